import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { EventState } from "../../gen/myevents/v1/event_pb.js";
import { EventService } from "../../gen/myevents/v1/event_service_pb.js";
import type { EventLookup } from "./bookings.js";

export interface EventLookupOptions {
  /** Deadline of each attempt. */
  timeoutMs?: number;
  /** Attempts in all; only Unavailable is retried (the call is read-only, so that is safe). */
  attempts?: number;
}

/**
 * Asks the EventService (service-to-service gRPC with the generated client)
 * about an event the BookingService has not heard of yet, e.g. when a
 * booking arrives before the EventCreated message.
 */
export function eventLookupOverGrpc(transport: Transport, options: EventLookupOptions = {}): EventLookup {
  const client = createClient(EventService, transport);
  const timeoutMs = options.timeoutMs ?? 2_000;
  const attempts = options.attempts ?? 3;
  return {
    async find(eventId) {
      for (let attempt = 1; ; attempt++) {
        try {
          const { event } = await client.getEvent({ id: eventId }, { timeoutMs });
          if (!event) return undefined;
          return { capacity: event.capacity, cancelled: event.state === EventState.CANCELLED };
        } catch (err) {
          const error = ConnectError.from(err);
          if (error.code === Code.NotFound) return undefined;
          if (error.code !== Code.Unavailable || attempt >= attempts) {
            throw new ConnectError(`could not look up event ${JSON.stringify(eventId)}: ${error.rawMessage}`, Code.Unavailable, undefined, undefined, error);
          }
          await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** (attempt - 1)));
        }
      }
    },
  };
}
