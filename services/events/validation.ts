import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { Violations } from "../runtime/errors.js";
import { EventSchema, EventState, type Event } from "../../gen/myevents/v1/event_pb.js";
import { HallSchema, LocationSchema, type Location } from "../../gen/myevents/v1/location_pb.js";

/** Input limits, documented in README. */
export const LIMITS = {
  nameLength: 200,
  addressLength: 500,
  idLength: 64,
  reasonLength: 500,
  queryLength: 200,
  halls: 50,
  hallCapacity: 100_000,
} as const;

// 0001-01-01 .. 9999-12-31, the range google.protobuf.Timestamp allows.
const MIN_SECONDS = -62_135_596_800n;
const MAX_SECONDS = 253_402_300_799n;

/** Trimmed text of 1..max characters, or a violation. */
export function requiredText(value: string, field: string, max: number, v: Violations): string {
  const text = value.trim();
  if (text === "") v.add(field, "is required");
  else if ([...text].length > max) v.add(field, `must be at most ${max} characters`);
  return text;
}

/** An id from a request: required and of bounded length (its format is the store's business). */
export function requiredId(value: string, field: string, v: Violations): string {
  if (value === "") v.add(field, "is required");
  else if (value.length > LIMITS.idLength) v.add(field, `must be at most ${LIMITS.idLength} characters`);
  return value;
}

/**
 * A valid timestamp in Unix milliseconds, or undefined. Times are kept at
 * millisecond precision (what MongoDB stores), so sub-millisecond parts
 * are dropped here, once, for both stores.
 */
export function timestamp(value: Timestamp | undefined, field: string, v: Violations, required: boolean): number | undefined {
  if (value === undefined) {
    if (required) v.add(field, "is required");
    return undefined;
  }
  if (value.seconds < MIN_SECONDS || value.seconds > MAX_SECONDS || value.nanos < 0 || value.nanos > 999_999_999) {
    v.add(field, "is not a valid timestamp (years 1 to 9999)");
    return undefined;
  }
  return timestampMs(value);
}

/** A location ready to store (without id), from CreateLocation's input. */
export function newLocation(input: Location | undefined, v: Violations): Location {
  if (input === undefined) {
    v.add("location", "is required");
    return create(LocationSchema);
  }
  const halls = input.halls.slice(0, LIMITS.halls + 1);
  if (halls.length === 0) v.add("location.halls", "must list at least one hall");
  if (halls.length > LIMITS.halls) v.add("location.halls", `must list at most ${LIMITS.halls} halls`);
  const seen = new Set<string>();
  const location = create(LocationSchema, {
    name: requiredText(input.name, "location.name", LIMITS.nameLength, v),
    address: input.address.trim(),
    country: input.country.trim().toUpperCase(),
    halls: halls.map((hall, i) => {
      const name = requiredText(hall.name, `location.halls[${i}].name`, LIMITS.nameLength, v);
      if (name !== "" && seen.has(name)) v.add(`location.halls[${i}].name`, `duplicates hall ${JSON.stringify(name)}`);
      seen.add(name);
      if (hall.capacity < 1 || hall.capacity > LIMITS.hallCapacity) {
        v.add(`location.halls[${i}].capacity`, `must be between 1 and ${LIMITS.hallCapacity}`);
      }
      return create(HallSchema, { name, capacity: hall.capacity });
    }),
  });
  if ([...location.address].length > LIMITS.addressLength) {
    v.add("location.address", `must be at most ${LIMITS.addressLength} characters`);
  }
  if (!/^[A-Z]{2}$/.test(location.country)) v.add("location.country", "must be an ISO 3166-1 alpha-2 code such as \"DE\"");
  return location;
}

/**
 * An event ready to store (without id), from CreateEvent's input and its
 * location (undefined when location_id names none).
 */
export function newEvent(input: Event | undefined, location: Location | undefined, nowMs: number, v: Violations): Event {
  if (input === undefined) {
    v.add("event", "is required");
    return create(EventSchema);
  }
  const name = requiredText(input.name, "event.name", LIMITS.nameLength, v);
  requiredId(input.locationId, "event.location_id", v);
  if (input.locationId !== "" && location === undefined) v.add("event.location_id", "names no existing location");
  const hall = location?.halls.find((h) => h.name === input.hall);
  if (input.hall === "") v.add("event.hall", "is required");
  else if (location && !hall) {
    v.add("event.hall", `is not a hall of this location (halls: ${location.halls.map((h) => h.name).join(", ")})`);
  }
  const start = timestamp(input.startTime, "event.start_time", v, true);
  const end = timestamp(input.endTime, "event.end_time", v, true);
  if (start !== undefined && start <= nowMs) v.add("event.start_time", "must be in the future");
  if (start !== undefined && end !== undefined && end <= start) v.add("event.end_time", "must be after start_time");
  let capacity = input.capacity;
  if (capacity < 0) v.add("event.capacity", "must not be negative");
  else if (hall && capacity > hall.capacity) {
    v.add("event.capacity", `must not exceed the hall's capacity of ${hall.capacity}`);
  } else if (capacity === 0 && hall) capacity = hall.capacity; // 0 means the whole hall
  return create(EventSchema, {
    name,
    locationId: input.locationId,
    hall: input.hall,
    startTime: start === undefined ? undefined : timestampFromMs(start),
    endTime: end === undefined ? undefined : timestampFromMs(end),
    capacity,
    seatsAvailable: capacity,
    state: EventState.SCHEDULED,
  });
}
