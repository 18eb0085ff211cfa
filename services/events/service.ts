import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { EventCancelledSchema, EventCreatedSchema, LocationCreatedSchema } from "../../gen/myevents/v1/domain_events_pb.js";
import type { EventService } from "../../gen/myevents/v1/event_service_pb.js";
import { outboxEntry } from "../outbox/outbox.js";
import { notFound, Violations } from "../runtime/errors.js";
import { newId } from "../runtime/ids.js";
import { decodePageToken, encodePageToken, pageSize } from "../runtime/paging.js";
import type { EventCursor, EventFilter, EventRepository, LocationCursor } from "./repository/repository.js";
import { millis, newEvent, newLocation } from "./validation.js";

/**
 * EventService handlers: plain functions over the generated types. Requests
 * arrive already checked against the contract's rules (validation
 * interceptor); handlers check what needs data (every problem reported at
 * once as InvalidArgument with field violations), then the repository does
 * the work.
 */
export function eventService(
  repo: EventRepository,
  options: { now?: () => number; onOutbox?: () => void } = {},
): ServiceImpl<typeof EventService> {
  const now = options.now ?? Date.now;
  const onOutbox = options.onOutbox ?? (() => {});
  const occurredAt = () => timestampFromMs(now());
  return {
    async createLocation(req) {
      const location = newLocation(req.location!);
      location.id = newId();
      const created = create(LocationCreatedSchema, { id: newId(), occurredAt: occurredAt(), location });
      await repo.createLocation(location, outboxEntry(LocationCreatedSchema, created, "location.created"));
      onOutbox();
      return { location };
    },

    async getLocation(req) {
      const location = await repo.getLocation(req.id);
      if (!location) throw notFound("location", req.id);
      return { location };
    },

    async listLocations(req) {
      const v = new Violations();
      const limit = pageSize(req.pageSize);
      const after = decodePageToken(req.pageToken, null, isLocationCursor, v);
      v.throwIfAny();
      const page = await repo.listLocations({ limit, after });
      const last = page.items.at(-1);
      return {
        locations: page.items,
        nextPageToken: page.more && last ? encodePageToken({ id: last.id } satisfies LocationCursor, null) : "",
      };
    },

    async createEvent(req) {
      const v = new Violations();
      const location = await repo.getLocation(req.event!.locationId);
      const event = newEvent(req.event!, location, now(), v);
      v.throwIfAny();
      event.id = newId();
      const created = create(EventCreatedSchema, { id: newId(), occurredAt: occurredAt(), event });
      await repo.createEvent(event, outboxEntry(EventCreatedSchema, created, "event.created"));
      onOutbox();
      return { event };
    },

    // Not async (the hottest call): an async function and its await are two
    // promises where one .then does, and each costs more while
    // AsyncLocalStorage (the trace context) tracks promises.
    getEvent(req) {
      return repo.getEvent(req.id).then((event) => {
        if (!event) throw notFound("event", req.id);
        return { event };
      });
    },

    async listEvents(req) {
      const v = new Violations();
      const limit = pageSize(req.pageSize);
      const query = req.query.trim();
      const startAfter = millis(req.startAfter);
      const startBefore = millis(req.startBefore);
      if (startAfter !== undefined && startBefore !== undefined && startBefore <= startAfter) {
        v.add("start_before", "must be later than start_after");
      }
      const filter: EventFilter = {
        query: query || undefined,
        locationId: req.locationId || undefined,
        startAfter: startAfter === undefined ? undefined : new Date(startAfter),
        startBefore: startBefore === undefined ? undefined : new Date(startBefore),
      };
      const after = decodePageToken(req.pageToken, filter, isEventCursor, v);
      v.throwIfAny();
      const page = await repo.listEvents(filter, { limit, after });
      const last = page.items.at(-1);
      const cursor = last?.startTime && ({ startMillis: timestampMs(last.startTime), id: last.id } satisfies EventCursor);
      return { events: page.items, nextPageToken: page.more && cursor ? encodePageToken(cursor, filter) : "" };
    },

    async cancelEvent(req) {
      const cancelled = create(EventCancelledSchema, { id: newId(), occurredAt: occurredAt(), eventId: req.id, reason: req.reason });
      const event = await repo.cancelEvent(req.id, outboxEntry(EventCancelledSchema, cancelled, "event.cancelled"));
      if (!event) throw notFound("event", req.id);
      onOutbox();
      return { event };
    },
  };
}

function isLocationCursor(value: unknown): value is LocationCursor {
  return typeof value === "object" && value !== null && typeof (value as LocationCursor).id === "string";
}

function isEventCursor(value: unknown): value is EventCursor {
  const c = value as EventCursor;
  return typeof c === "object" && c !== null && typeof c.id === "string" && Number.isSafeInteger(c.startMillis);
}
