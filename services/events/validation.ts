import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { Violations } from "../runtime/errors.js";
import { EventSchema, EventState, type Event } from "../../gen/myevents/v1/event_pb.js";
import { HallSchema, LocationSchema, type Location } from "../../gen/myevents/v1/location_pb.js";

// Shapes (required fields, lengths, ranges, formats) are `buf.validate`
// rules in the contracts, checked by the validation interceptor before a
// handler runs. What is left here needs data or the clock, plus
// normalisation of what is stored.

/**
 * A timestamp in Unix milliseconds, or undefined when absent. Times are kept
 * at millisecond precision (what MongoDB stores), so sub-millisecond parts
 * are dropped here, once, for both stores. The contract bounds the range.
 */
export function millis(value: Timestamp | undefined): number | undefined {
  return value === undefined ? undefined : timestampMs(value);
}

/** A location ready to store (without id), from CreateLocation's valid input. */
export function newLocation(input: Location): Location {
  return create(LocationSchema, {
    name: input.name.trim(),
    address: input.address.trim(),
    country: input.country.toUpperCase(),
    halls: input.halls.map((hall) => create(HallSchema, { name: hall.name, capacity: hall.capacity })),
  });
}

/**
 * An event ready to store (without id), from CreateEvent's valid input and
 * its location (undefined when location_id names none).
 */
export function newEvent(input: Event, location: Location | undefined, nowMs: number, v: Violations): Event {
  if (location === undefined) v.add("event.location_id", "names no existing location");
  const hall = location?.halls.find((h) => h.name === input.hall);
  if (location && !hall) {
    v.add("event.hall", `is not a hall of this location (halls: ${location.halls.map((h) => h.name).join(", ")})`);
  }
  const start = millis(input.startTime)!;
  const end = millis(input.endTime)!;
  if (start <= nowMs) v.add("event.start_time", "must be in the future");
  if (end <= start) v.add("event.end_time", "must be after start_time");
  let capacity = input.capacity;
  if (hall && capacity > hall.capacity) {
    v.add("event.capacity", `must not exceed the hall's capacity of ${hall.capacity}`);
  } else if (capacity === 0 && hall) capacity = hall.capacity; // 0 means the whole hall
  return create(EventSchema, {
    name: input.name.trim(),
    locationId: input.locationId,
    hall: input.hall,
    startTime: timestampFromMs(start),
    endTime: timestampFromMs(end),
    capacity,
    seatsAvailable: capacity,
    state: EventState.SCHEDULED,
  });
}
