import { clone } from "@bufbuild/protobuf";
import type { GenMessage } from "@bufbuild/protobuf/codegenv2";
import { timestampFromMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import { EventSchema, EventState, type Event } from "../../../gen/myevents/v1/event_pb.js";
import { LocationSchema, type Location } from "../../../gen/myevents/v1/location_pb.js";
import { MemoryOutbox } from "../../outbox/memory.js";
import type { OutboxEntry, OutboxSource } from "../../outbox/outbox.js";
import {
  DuplicateIdError,
  type EventCursor,
  type EventFilter,
  type EventRepository,
  type LocationCursor,
  type PageQuery,
  type PageResult,
} from "./repository.js";

/**
 * The embedded default: everything in process memory, gone on restart.
 * Mirrors MongoEventRepository exactly (repository.contract.ts proves it),
 * keeping times at millisecond precision as a BSON Date would. It stores
 * frozen copies and hands those out as they are: GetEvent is the mesh's
 * hottest read, and a copy per read was 4-5% of its CPU (bench/README.md,
 * finding 9). No caller can change stored state (writing to a snapshot
 * throws); a change stores a new snapshot.
 */
export class MemoryEventRepository implements EventRepository {
  private readonly locations = new Map<string, Location>();
  private readonly events = new Map<string, Event>();
  private readonly seatVersions = new Map<string, number>();
  private readonly locationOutbox = new MemoryOutbox("locations");
  private readonly eventOutbox = new MemoryOutbox("events");

  async createLocation(location: Location, created: OutboxEntry): Promise<void> {
    if (this.locations.has(location.id)) throw new DuplicateIdError(location.id);
    this.locations.set(location.id, snapshot(LocationSchema, location));
    this.locationOutbox.add(location.id, created);
  }

  async getLocation(id: string): Promise<Location | undefined> {
    return this.locations.get(id);
  }

  async listLocations(page: PageQuery<LocationCursor>): Promise<PageResult<Location>> {
    const after = page.after;
    const sorted = [...this.locations.values()]
      .filter((l) => after === undefined || l.id > after.id)
      .sort((a, b) => compareIds(a.id, b.id));
    return pageOf(sorted, page.limit);
  }

  async createEvent(event: Event, created: OutboxEntry): Promise<void> {
    const startTime = requireStartTime(event);
    if (this.events.has(event.id)) throw new DuplicateIdError(event.id);
    const stored = clone(EventSchema, event);
    stored.startTime = timestampFromMs(millis(startTime));
    if (event.endTime) stored.endTime = timestampFromMs(millis(event.endTime));
    this.events.set(event.id, deepFreeze(stored));
    this.eventOutbox.add(event.id, created);
  }

  async getEvent(id: string): Promise<Event | undefined> {
    return this.events.get(id);
  }

  async listEvents(filter: EventFilter, page: PageQuery<EventCursor>): Promise<PageResult<Event>> {
    const { query, locationId, startAfter, startBefore } = filter;
    const needle = query?.toLowerCase();
    const after = page.after;
    const matching = [...this.events.values()].filter((e) => {
      const start = millis(e.startTime!);
      if (needle && !e.name.toLowerCase().includes(needle)) return false;
      if (locationId !== undefined && e.locationId !== locationId) return false;
      if (startAfter && start < startAfter.getTime()) return false;
      if (startBefore && start >= startBefore.getTime()) return false;
      // Keyset: strictly after (startMillis, id).
      if (after && !(start > after.startMillis || (start === after.startMillis && e.id > after.id))) return false;
      return true;
    });
    matching.sort((a, b) => millis(a.startTime!) - millis(b.startTime!) || compareIds(a.id, b.id));
    return pageOf(matching, page.limit);
  }

  async cancelEvent(id: string, cancelled: OutboxEntry): Promise<Event | undefined> {
    const stored = this.events.get(id);
    if (!stored || stored.state !== EventState.SCHEDULED) return stored;
    const next = this.replaceEvent(stored, { state: EventState.CANCELLED });
    this.eventOutbox.add(id, cancelled);
    return next;
  }

  async applySeats(eventId: string, seatsAvailable: number, version: number): Promise<boolean> {
    const stored = this.events.get(eventId);
    if (!stored || (this.seatVersions.get(eventId) ?? -Infinity) >= version) return false;
    this.replaceEvent(stored, { seatsAvailable });
    this.seatVersions.set(eventId, version);
    return true;
  }

  private replaceEvent(stored: Event, change: Partial<Pick<Event, "state" | "seatsAvailable">>): Event {
    const next = deepFreeze(Object.assign(clone(EventSchema, stored), change));
    this.events.set(next.id, next);
    return next;
  }

  outboxSources(): OutboxSource[] {
    return [this.locationOutbox, this.eventOutbox];
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}
}

/**
 * Unix milliseconds of a Timestamp, sub-millisecond nanos truncated. Both
 * adapters store times this way (Mongo as a BSON Date), so they agree.
 */
export function millis(ts: Timestamp): number {
  return Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1_000_000);
}

/** Events are paged by start_time, so one without it could never be listed consistently. */
export function requireStartTime(event: Event): Timestamp {
  if (!event.startTime) throw new TypeError(`event ${event.id} has no start_time`);
  return event.startTime;
}

// Plain code-unit order, as MongoDB compares (ASCII) strings; not locale order.
function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function pageOf<T>(sorted: T[], limit: number): PageResult<T> {
  return { items: sorted.slice(0, limit), more: sorted.length > limit };
}

function snapshot<T extends Location | Event>(schema: GenMessage<T>, message: T): T {
  return deepFreeze(clone(schema, message));
}

/** Freezes a message and everything in it (typed arrays, i.e. bytes fields, cannot be frozen and are left as they are). */
function deepFreeze<T>(value: T): T {
  if (typeof value !== "object" || value === null || ArrayBuffer.isView(value) || Object.isFrozen(value)) return value;
  for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  return Object.freeze(value);
}
