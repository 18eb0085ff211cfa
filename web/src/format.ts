import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { EventState, type Event } from "../../gen/myevents/v1/event_pb.js";

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function when(ts: Timestamp | undefined): string {
  return ts ? dateTime.format(timestampDate(ts)) : "time to be announced";
}

/** "Nov 30, 2026, 7:00 – 9:00 PM": the date once when both ends share it. */
export function span(start: Timestamp | undefined, end: Timestamp | undefined): string {
  if (!start || !end) return when(start);
  return dateTime.formatRange(timestampDate(start), timestampDate(end));
}

/** "12 of 100 seats left", "Sold out", "Cancelled": what a visitor wants to know first. */
export function availability(event: Pick<Event, "seatsAvailable" | "capacity" | "state">): string {
  if (event.state === EventState.CANCELLED) return "Cancelled";
  if (event.seatsAvailable <= 0) return "Sold out";
  return `${event.seatsAvailable} of ${event.capacity} ${event.capacity === 1 ? "seat" : "seats"} left`;
}
