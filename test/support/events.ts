import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Client } from "@connectrpc/connect";
import type { EventService } from "../../gen/myevents/v1/event_service_pb.js";

const HOUR = 3_600_000;

/** A location with one hall of `capacity` seats and an event there tomorrow, on sale. */
export async function newEvent(events: Client<typeof EventService>, capacity: number) {
  const { location } = await events.createLocation({ location: { name: "Arena", country: "DE", halls: [{ name: "Main", capacity }] } });
  const { event } = await events.createEvent({
    event: {
      name: "Show",
      locationId: location!.id,
      hall: "Main",
      startTime: timestampFromDate(new Date(Date.now() + 24 * HOUR)),
      endTime: timestampFromDate(new Date(Date.now() + 26 * HOUR)),
    },
  });
  return event!;
}
