import type { Event } from "../../../gen/myevents/v1/event_pb.js";
import type { Location } from "../../../gen/myevents/v1/location_pb.js";
import type { OutboxEntry, OutboxSource } from "../../outbox/outbox.js";

/**
 * The EventService's persistence port. Two adapters implement it
 * (in-memory and MongoDB) and one contract suite
 * (repository.contract.ts) proves they behave the same.
 *
 * Entities are the generated protobuf messages; adapters store and return
 * them whole. Ids are assigned by the service before a create.
 *
 * Every change that other services must hear of carries its domain event
 * as an outbox entry, stored in the same document by the same atomic write
 * (see ../../outbox/outbox.ts).
 */
export interface EventRepository {
  /** Stores a new location with its LocationCreated entry. Throws DuplicateIdError when the id exists. */
  createLocation(location: Location, created: OutboxEntry): Promise<void>;
  getLocation(id: string): Promise<Location | undefined>;
  /** Locations ordered by id (ids are time-ordered UUIDv7, so creation order). */
  listLocations(page: PageQuery<LocationCursor>): Promise<PageResult<Location>>;

  /** Stores a new event with its EventCreated entry. Throws DuplicateIdError when the id exists. */
  createEvent(event: Event, created: OutboxEntry): Promise<void>;
  getEvent(id: string): Promise<Event | undefined>;
  /** Events matching every given filter, ordered by (start_time, id). */
  listEvents(filter: EventFilter, page: PageQuery<EventCursor>): Promise<PageResult<Event>>;
  /**
   * Marks a scheduled event cancelled, storing the EventCancelled entry in
   * the same atomic update, and returns it as stored afterwards; undefined
   * when there is no such event. Cancelling a cancelled event changes
   * nothing and stores no entry.
   */
  cancelEvent(id: string, cancelled: OutboxEntry): Promise<Event | undefined>;
  /**
   * Sets seats_available as the BookingService reported it at inventory
   * `version`, unless a newer version was applied already (so duplicates
   * and out-of-order messages are harmless). False when nothing changed.
   */
  applySeats(eventId: string, seatsAvailable: number, version: number): Promise<boolean>;

  /** Where this store's outbox entries wait for the relay. */
  outboxSources(): OutboxSource[];

  /** Resolves when the store is reachable; rejects otherwise (health checks). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface EventFilter {
  /** Case-insensitive substring of the name, matched literally (no regex). */
  query?: string;
  locationId?: string;
  /** start_time >= startAfter */
  startAfter?: Date;
  /** start_time < startBefore */
  startBefore?: Date;
}

/** Keyset paging: the page starts strictly after `after`. */
export interface PageQuery<C> {
  limit: number;
  after?: C;
}

export interface PageResult<T> {
  items: T[];
  /** True when more items follow the last one returned. */
  more: boolean;
}

export interface LocationCursor {
  id: string;
}

export interface EventCursor {
  /** start_time in Unix milliseconds. */
  startMillis: number;
  id: string;
}

export class DuplicateIdError extends Error {
  constructor(readonly id: string) {
    super(`duplicate id ${id}`);
    this.name = "DuplicateIdError";
  }
}
