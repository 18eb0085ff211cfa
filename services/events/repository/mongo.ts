import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type MongoClient, type Collection, type Db, type Filter, type OptionalUnlessRequiredId } from "mongodb";
import { EventSchema, EventState, type Event } from "../../../gen/myevents/v1/event_pb.js";
import { LocationSchema, type Location } from "../../../gen/myevents/v1/location_pb.js";
import { documentLock, type DocumentLock } from "../../outbox/lock.js";
import { ensureOutboxIndex, mongoOutboxSource, toStoredEntry, type StoredEntry } from "../../outbox/mongo.js";
import type { OutboxEntry, OutboxSource } from "../../outbox/outbox.js";
import { createMongoClient, isDuplicateKey } from "../../runtime/mongo.js";
import { millis, requireStartTime } from "./memory.js";
import {
  DuplicateIdError,
  type EventCursor,
  type EventFilter,
  type EventRepository,
  type LocationCursor,
  type PageQuery,
  type PageResult,
} from "./repository.js";

/** A `locations` document: `_id` is the location id, other fields as in the message. */
export interface LocationDoc {
  _id: string;
  /** Domain events waiting for the relay (see outbox/outbox.ts). */
  outbox?: StoredEntry[];
  name: string;
  address: string;
  country: string;
  halls: { name: string; capacity: number }[];
}

/**
 * An `events` document: `_id` is the event id; times are BSON Dates
 * (millisecond precision; `endTime` absent when unset); `state` is the enum
 * value's short name ("SCHEDULED", "CANCELLED"), readable in a shell, or
 * the number for a value this build doesn't know.
 */
export interface EventDoc {
  _id: string;
  outbox?: StoredEntry[];
  /** inventory_version of the last seats_available applied (absent: none yet). */
  seatsVersion?: number;
  name: string;
  locationId: string;
  hall: string;
  startTime: Date;
  endTime?: Date;
  capacity: number;
  seatsAvailable: number;
  state: string | number;
}

/** MongoDB adapter (also runs on FerretDB: plain operators, no transactions). */
export class MongoEventRepository implements EventRepository {
  private readonly locations: Collection<LocationDoc>;
  private readonly events: Collection<EventDoc>;
  // FerretDB 1.x applies concurrent updates of one document non-atomically
  // (lost updates), so every update of an event document, including the
  // relay's, goes through one in-process lock per document. Location
  // documents are only updated by the relay, so they need none.
  private readonly eventLock: DocumentLock = documentLock();

  /** `owned`: a client this repository created and so closes in close(). */
  constructor(
    readonly database: Db,
    private readonly owned?: MongoClient,
  ) {
    this.locations = database.collection<LocationDoc>("locations");
    this.events = database.collection<EventDoc>("events");
  }

  /**
   * A repository owning a new, lazily connecting client: it never fails to
   * open; operations fail (and ping() rejects) while the server is down.
   */
  static open(url: string, dbName: string): MongoEventRepository {
    const client = createMongoClient(url, "myevents-events");
    return new MongoEventRepository(client.db(dbName), client);
  }

  /** Creates the indexes listEvents needs; idempotent, call at startup. */
  async ensureIndexes(): Promise<void> {
    // Locations page by _id, which has its index already. One index per
    // command: FerretDB 1.24 drops the connection (a server panic) when a
    // single createIndexes names two or more indexes that all exist already.
    await this.events.createIndex({ startTime: 1, _id: 1 }, { name: "startTime_id" });
    await this.events.createIndex({ locationId: 1, startTime: 1, _id: 1 }, { name: "locationId_startTime_id" });
    await ensureOutboxIndex(this.events);
    await ensureOutboxIndex(this.locations);
  }

  async createLocation(location: Location, created: OutboxEntry): Promise<void> {
    await insert(this.locations, { ...toLocationDoc(location), outbox: [toStoredEntry(created)] });
  }

  async getLocation(id: string): Promise<Location | undefined> {
    const doc = await this.locations.findOne({ _id: id });
    return doc ? fromLocationDoc(doc) : undefined;
  }

  async listLocations(page: PageQuery<LocationCursor>): Promise<PageResult<Location>> {
    const filter: Filter<LocationDoc> = page.after ? { _id: { $gt: page.after.id } } : {};
    const docs = await this.locations
      .find(filter)
      .sort({ _id: 1 })
      .limit(page.limit + 1) // one extra tells whether more follow
      .toArray();
    return pageOf(docs, page.limit, fromLocationDoc);
  }

  async createEvent(event: Event, created: OutboxEntry): Promise<void> {
    await insert(this.events, { ...toEventDoc(event), outbox: [toStoredEntry(created)] });
  }

  async getEvent(id: string): Promise<Event | undefined> {
    const doc = await this.events.findOne({ _id: id });
    return doc ? fromEventDoc(doc) : undefined;
  }

  async listEvents(filter: EventFilter, page: PageQuery<EventCursor>): Promise<PageResult<Event>> {
    const and: Filter<EventDoc>[] = [];
    if (filter.query) and.push({ name: { $regex: escapeRegex(filter.query), $options: "i" } });
    if (filter.locationId !== undefined) and.push({ locationId: filter.locationId });
    if (filter.startAfter) and.push({ startTime: { $gte: filter.startAfter } });
    if (filter.startBefore) and.push({ startTime: { $lt: filter.startBefore } });
    if (page.after) {
      const start = new Date(page.after.startMillis);
      and.push({ $or: [{ startTime: { $gt: start } }, { startTime: start, _id: { $gt: page.after.id } }] });
    }
    const docs = await this.events
      .find(and.length > 0 ? { $and: and } : {})
      .sort({ startTime: 1, _id: 1 })
      .limit(page.limit + 1)
      .toArray();
    return pageOf(docs, page.limit, fromEventDoc);
  }

  async cancelEvent(id: string, cancelled: OutboxEntry): Promise<Event | undefined> {
    return this.eventLock(id, async () => {
      // Only a scheduled event changes (and announces it); a repeat finds none.
      const changed = await this.events.findOneAndUpdate(
        { _id: id, state: stateName(EventState.SCHEDULED) },
        { $set: { state: stateName(EventState.CANCELLED) }, $push: { outbox: toStoredEntry(cancelled) } },
        { returnDocument: "after" },
      );
      const doc = changed ?? (await this.events.findOne({ _id: id }));
      return doc ? fromEventDoc(doc) : undefined;
    });
  }

  async applySeats(eventId: string, seatsAvailable: number, version: number): Promise<boolean> {
    return this.eventLock(eventId, async () => {
      const result = await this.events.updateOne(
        { _id: eventId, $or: [{ seatsVersion: { $lt: version } }, { seatsVersion: { $exists: false } }] },
        { $set: { seatsAvailable, seatsVersion: version } },
      );
      return result.modifiedCount > 0;
    });
  }

  outboxSources(): OutboxSource[] {
    return [
      mongoOutboxSource(this.locations, "locations"),
      mongoOutboxSource(this.events, "events", { lock: this.eventLock }),
    ];
  }

  async ping(): Promise<void> {
    await this.database.command({ ping: 1 });
  }

  async close(): Promise<void> {
    await this.owned?.close();
  }
}

async function insert<T extends { _id: string }>(collection: Collection<T>, doc: T): Promise<void> {
  try {
    await collection.insertOne(doc as OptionalUnlessRequiredId<T>);
  } catch (err) {
    if (isDuplicateKey(err)) throw new DuplicateIdError(doc._id);
    throw err;
  }
}

function toLocationDoc(l: Location): LocationDoc {
  return {
    _id: l.id,
    name: l.name,
    address: l.address,
    country: l.country,
    halls: l.halls.map((h) => ({ name: h.name, capacity: h.capacity })),
  };
}

function fromLocationDoc(d: LocationDoc): Location {
  return create(LocationSchema, {
    id: d._id,
    name: d.name,
    address: d.address,
    country: d.country,
    halls: d.halls,
  });
}

function toEventDoc(e: Event): EventDoc {
  const doc: EventDoc = {
    _id: e.id,
    name: e.name,
    locationId: e.locationId,
    hall: e.hall,
    startTime: new Date(millis(requireStartTime(e))),
    capacity: e.capacity,
    seatsAvailable: e.seatsAvailable,
    state: stateName(e.state),
  };
  // Leave endTime out rather than store null (the driver writes undefined as null).
  if (e.endTime) doc.endTime = new Date(millis(e.endTime));
  return doc;
}

function fromEventDoc(d: EventDoc): Event {
  return create(EventSchema, {
    id: d._id,
    name: d.name,
    locationId: d.locationId,
    hall: d.hall,
    startTime: timestampFromDate(d.startTime),
    endTime: d.endTime ? timestampFromDate(d.endTime) : undefined,
    capacity: d.capacity,
    seatsAvailable: d.seatsAvailable,
    state: typeof d.state === "number" ? d.state : EventState[d.state as keyof typeof EventState],
  });
}

function stateName(state: EventState): string | number {
  return EventState[state] ?? state;
}

/** The user's text as a literal regex: names are searched, never pattern-matched. */
export function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function pageOf<D, T>(docs: D[], limit: number, map: (doc: D) => T): PageResult<T> {
  return { items: docs.slice(0, limit).map(map), more: docs.length > limit };
}
