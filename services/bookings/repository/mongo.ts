import { type Collection, type Db, type Document, type Filter, type MongoClient, type UpdateFilter, type WithId } from "mongodb";
import { documentLock, type DocumentLock } from "../../outbox/lock.js";
import { ensureOutboxIndex, mongoOutboxSource, toStoredEntry, type MongoOutboxSource, type StoredEntry } from "../../outbox/mongo.js";
import type { OutboxEntry, OutboxSource } from "../../outbox/outbox.js";
import { createMongoClient, isDuplicateKey } from "../../runtime/mongo.js";
import { matchesFilter } from "./filter.js";
import { checkDelta, checkSeats, UnknownInventoryError } from "./memory.js";
import {
  releaseMarker,
  reserveMarker,
  type BookingRecord,
  type BookingRepository,
  type BookingStateName,
  type Inventory,
  type ReserveResult,
  type SeatChange,
} from "./repository.js";

/**
 * An `inventory` document: `_id` is the event id. `markers` may be absent
 * (read as empty): FerretDB 1.24 drops an empty array from `$setOnInsert`.
 */
export interface InventoryDoc {
  _id: string;
  capacity: number;
  seatsAvailable: number;
  open: boolean;
  version: number;
  markers?: string[];
  /** Pending domain events of inventory changes that no booking announces (ReservationUndone). */
  outbox?: StoredEntry[];
}

/** A `bookings` document: `_id` is the booking id; `outbox` holds its pending domain events. */
export interface BookingDoc {
  _id: string;
  eventId: string;
  userId: string;
  requestId: string;
  seats: number;
  state: BookingStateName;
  createdAt: Date;
  updatedAt: Date;
  opToken?: string;
  reservedBy?: string;
  releasedBy?: string;
  outbox: StoredEntry[];
}

/**
 * MongoDB adapter (also runs on FerretDB 1.x). Every method is one
 * conditional single-document write, atomic on MongoDB across processes.
 *
 * FerretDB 1.x is not atomic even for one document: it reads, modifies in
 * Go and writes the whole document back by _id (its issue #3040), so
 * concurrent updates of one document get lost. Every write therefore also
 * runs under an in-process lock per document (outbox/lock.ts), shared with
 * the outbox source's markSent. On FerretDB that makes one process safe;
 * several replicas writing the same documents are not.
 */
export class MongoBookingRepository implements BookingRepository {
  private readonly inventory: Collection<InventoryDoc>;
  private readonly bookings: Collection<BookingDoc>;
  private readonly inventoryLock: DocumentLock = documentLock();
  private readonly bookingLock: DocumentLock = documentLock();
  private readonly outbox: MongoOutboxSource;
  /** ReservationUndone entries live on the inventory document that changed (see revertSeats). */
  private readonly inventoryOutbox: MongoOutboxSource;
  /** Whether the server is FerretDB (asked once; see updateWhere). */
  private ferret: Promise<boolean> | undefined;

  /**
   * `database`: also where the service keeps its other collections (e.g.
   * processed messages). `owned`: a client this repository created and so
   * closes in close().
   */
  constructor(
    readonly database: Db,
    private readonly owned?: MongoClient,
  ) {
    this.inventory = database.collection<InventoryDoc>("inventory");
    this.bookings = database.collection<BookingDoc>("bookings");
    // The relay learns of new entries from the writes (noteWritten), so it
    // queries a whole collection only every OUTBOX_SCAN_INTERVAL_MS (see scanIntervalMs).
    this.outbox = mongoOutboxSource(this.bookings, "bookings", { lock: this.bookingLock, scanIntervalMs: OUTBOX_SCAN_INTERVAL_MS });
    this.inventoryOutbox = mongoOutboxSource(this.inventory, "inventory", { lock: this.inventoryLock, scanIntervalMs: OUTBOX_SCAN_INTERVAL_MS });
  }

  /**
   * A repository owning a new, lazily connecting client: it never fails to
   * open; operations fail (and ping() rejects) while the server is down.
   */
  static open(url: string, dbName: string): MongoBookingRepository {
    const client = createMongoClient(url, "myevents-bookings");
    return new MongoBookingRepository(client.db(dbName), client);
  }

  /** Creates the indexes (the request_id one is what makes insertPending unique); idempotent, call at startup. */
  async ensureIndexes(): Promise<void> {
    // One index per command: FerretDB 1.24 drops the connection when a
    // single createIndexes names two or more indexes that all exist already.
    await this.bookings.createIndex({ userId: 1, requestId: 1 }, { name: "userId_requestId", unique: true });
    await this.bookings.createIndex({ userId: 1, _id: -1 }, { name: "userId_id" });
    await this.bookings.createIndex({ eventId: 1, state: 1 }, { name: "eventId_state" });
    await this.bookings.createIndex({ state: 1, updatedAt: 1 }, { name: "state_updatedAt" });
    await ensureOutboxIndex(this.bookings);
    await ensureOutboxIndex(this.inventory);
  }

  // --- seat inventory ---

  async ensureInventory(eventId: string, capacity: number): Promise<Inventory> {
    return this.inventoryLock(eventId, async () => {
      const fresh = { capacity, seatsAvailable: capacity, open: true, version: 0, markers: [] };
      try {
        const doc = await this.inventory.findOneAndUpdate(
          { _id: eventId },
          { $setOnInsert: fresh },
          { upsert: true, returnDocument: "after" },
        );
        if (doc) return fromInventoryDoc(doc);
      } catch (err) {
        // Racing upserts (other processes) both find nothing and insert;
        // the loser gets a duplicate key, and the document exists now.
        if (!isDuplicateKey(err)) throw err;
      }
      const doc = await this.inventory.findOne({ _id: eventId });
      if (!doc) throw new Error(`inventory ${eventId} vanished after its upsert`);
      return fromInventoryDoc(doc);
    });
  }

  async getInventory(eventId: string): Promise<Inventory | undefined> {
    const doc = await this.inventory.findOne({ _id: eventId });
    return doc ? fromInventoryDoc(doc) : undefined;
  }

  async closeInventory(eventId: string, capacity: number): Promise<void> {
    await this.inventoryLock(eventId, async () => {
      const close = () =>
        this.inventory.updateOne(
          { _id: eventId },
          { $set: { open: false }, $setOnInsert: { capacity, seatsAvailable: capacity, version: 0, markers: [] } },
          { upsert: true },
        );
      // A duplicate key means another process just created it: the update now matches.
      await close().catch((err: unknown) => (isDuplicateKey(err) ? close() : Promise.reject(err)));
    });
  }

  async reserveSeats(eventId: string, bookingId: string, seats: number): Promise<ReserveResult> {
    checkSeats(seats);
    const marker = reserveMarker(bookingId);
    return this.inventoryLock(eventId, async () => {
      // The filter carries every precondition, so the check and the change are one atomic step.
      // One conditional write even on FerretDB (unlike updateWhere): the inventory collection
      // is small (a document per event), and this runs under the event's lock, which every
      // booking of the event waits for, so one round trip matters more than a short scan.
      const doc = await this.inventory.findOneAndUpdate(
        { _id: eventId, open: true, seatsAvailable: { $gte: seats }, markers: { $ne: marker } },
        { $inc: { seatsAvailable: -seats, version: 1 }, $push: { markers: marker } },
        { returnDocument: "after" },
      );
      if (doc) return { ok: true, fresh: true, ...seatChange(doc) };
      // Refused: one read tells why (same order of checks as the memory adapter).
      const inv = await this.inventory.findOne({ _id: eventId });
      if (!inv) return { ok: false, reason: "unknown_event", seatsAvailable: 0 };
      if (inv.markers?.includes(marker)) return { ok: true, fresh: false, ...seatChange(inv) }; // applied before
      return { ok: false, reason: inv.open ? "sold_out" : "closed", seatsAvailable: inv.seatsAvailable };
    });
  }

  async releaseSeats(eventId: string, bookingId: string, seats: number): Promise<SeatChange> {
    checkSeats(seats);
    const marker = releaseMarker(bookingId);
    return this.inventoryLock(eventId, async () => {
      const r = await this.addSeats(eventId, seats, marker, false);
      if (!r) throw new UnknownInventoryError(eventId);
      return { ...seatChange(r.doc), fresh: r.applied }; // not applied: the marker was there already
    });
  }

  async revertSeats(eventId: string, marker: string, seatsToAdd: number, announce?: (change: SeatChange) => OutboxEntry): Promise<SeatChange | undefined> {
    checkDelta(seatsToAdd);
    const r = await this.inventoryLock(eventId, () => this.addSeats(eventId, seatsToAdd, marker, true, announce));
    return r?.applied ? seatChange(r.doc) : undefined;
  }

  async listMarked(limit: number): Promise<Inventory[]> {
    if (limit <= 0) return []; // limit(0) means "no limit" to MongoDB
    const docs = await this.inventory
      .find({ "markers.0": { $exists: true } })
      .sort({ _id: 1 })
      .limit(limit)
      .toArray();
    return docs.map(fromInventoryDoc);
  }

  async hasMarker(eventId: string, marker: string): Promise<boolean> {
    return (await this.inventory.findOne({ _id: eventId, markers: marker }, { projection: { _id: 1 } })) !== null;
  }

  async clearMarker(eventId: string, marker: string): Promise<Inventory | undefined> {
    return this.inventoryLock(eventId, async () => {
      // One round trip for the change and the read after it (a create checks `open` right after).
      const doc = await this.inventory.findOneAndUpdate({ _id: eventId }, { $pull: { markers: marker } }, { returnDocument: "after" });
      return doc ? fromInventoryDoc(doc) : undefined;
    });
  }

  // --- bookings ---

  async insertPending(booking: BookingRecord): Promise<{ inserted: true } | { inserted: false; existing: BookingRecord }> {
    for (let attempt = 1; ; attempt++) {
      try {
        // An insert is atomic on FerretDB too: the unique index is SQLite's.
        await this.bookings.insertOne(toBookingDoc(booking));
        return { inserted: true };
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        const existing = await this.bookings.findOne({ userId: booking.userId, requestId: booking.requestId }, withoutOutbox);
        if (existing) return { inserted: false, existing: fromBookingDoc(existing) };
        // The holder of this request_id failed and removed its record between our insert and
        // our read (the hostile-input fuzzer raced one request_id 16 ways): insert again.
        if (attempt === 3) throw err;
      }
    }
  }

  async getBooking(id: string): Promise<BookingRecord | undefined> {
    const doc = await this.bookings.findOne({ _id: id }, withoutOutbox);
    return doc ? fromBookingDoc(doc) : undefined;
  }

  async deletePending(id: string, token: string): Promise<void> {
    await this.bookingLock(id, async () => {
      const when = { state: "PENDING" as const, opToken: token };
      if (!(await this.isFerret())) return void (await this.bookings.deleteOne({ ...when, _id: id }));
      // FerretDB: by _id alone, the condition checked here (see updateWhere).
      const doc = await this.bookings.findOne({ _id: id }, withoutOutbox);
      if (doc && matchesFilter(doc, when)) await this.bookings.deleteOne({ _id: id });
    });
  }

  async confirm(id: string, token: string, entry: OutboxEntry): Promise<BookingRecord | undefined> {
    return this.transition(id, { state: "PENDING", opToken: token }, finish("CONFIRMED", { reservedBy: token }), entry);
  }

  async beginCancel(id: string, token: string): Promise<BookingRecord | undefined> {
    return this.transition(id, { state: "CONFIRMED" }, { $set: { state: "CANCELLING", opToken: token } });
  }

  async takeOver(id: string, oldToken: string, newToken: string): Promise<BookingRecord | undefined> {
    return this.transition(id, { state: { $in: ["PENDING", "CANCELLING"] }, opToken: oldToken }, { $set: { opToken: newToken } });
  }

  async finishCancel(id: string, token: string, entry: OutboxEntry, releasedBy = token): Promise<BookingRecord | undefined> {
    return this.transition(id, { state: "CANCELLING", opToken: token }, finish("CANCELLED", { releasedBy }), entry);
  }

  async cancelForEvent(id: string, entry: OutboxEntry): Promise<BookingRecord | undefined> {
    return this.transition(id, { state: { $in: ["CONFIRMED", "CANCELLING"] } }, finish("CANCELLED"), entry);
  }

  async listByUser(userId: string, page: { limit: number; before?: string }): Promise<{ items: BookingRecord[]; more: boolean }> {
    const filter: Filter<BookingDoc> = { userId, state: { $ne: "PENDING" } };
    if (page.before !== undefined) filter._id = { $lt: page.before };
    // Keyset on _id (time-ordered ids); one extra row tells whether more follow.
    const docs = await this.bookings
      .find(filter, withoutOutbox)
      .sort({ _id: -1 })
      .limit(Math.max(0, page.limit) + 1)
      .toArray();
    return { items: docs.slice(0, page.limit).map(fromBookingDoc), more: docs.length > page.limit };
  }

  async listByEvent(eventId: string, states: BookingStateName[], limit: number): Promise<BookingRecord[]> {
    if (limit <= 0) return []; // limit(0) means "no limit" to MongoDB
    const docs = await this.bookings
      .find({ eventId, state: { $in: states } }, withoutOutbox)
      .sort({ _id: 1 })
      .limit(limit)
      .toArray();
    return docs.map(fromBookingDoc);
  }

  async listStale(before: Date, limit: number): Promise<BookingRecord[]> {
    if (limit <= 0) return [];
    const docs = await this.bookings
      .find({ state: { $in: ["PENDING", "CANCELLING"] }, updatedAt: { $lt: before } }, withoutOutbox)
      .sort({ updatedAt: 1, _id: 1 })
      .limit(limit)
      .toArray();
    return docs.map(fromBookingDoc);
  }

  outboxSources(): OutboxSource[] {
    return [this.outbox, this.inventoryOutbox];
  }

  async ping(): Promise<void> {
    await this.database.command({ ping: 1 });
  }

  async close(): Promise<void> {
    await this.owned?.close();
  }

  /**
   * seatsAvailable += delta and version + 1 in one update, only while
   * `marker` is absent (then it is added) or present (then it is removed),
   * as `withMarker` says; kept within [0, capacity]. Undefined if there is
   * no inventory; `applied: false` if the marker condition did not hold.
   *
   * The capacity bound compares two fields, which a plain query can't, and
   * FerretDB 1.24 has no `$expr` (NotImplemented). So the document is read
   * first and its capacity used as a literal in the filter, with `capacity`
   * itself in the filter too: it never changes after creation, and if it
   * did the update would just not match. A change that would cross a bound
   * (counts already inconsistent) stops at the bound rather than fail: a
   * refusal would leave the cancellation stuck forever.
   */
  private async addSeats(
    eventId: string,
    delta: number,
    marker: string,
    withMarker: boolean,
    announce?: (change: SeatChange) => OutboxEntry,
  ): Promise<{ doc: InventoryDoc; applied: boolean } | undefined> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const inv = await this.inventory.findOne({ _id: eventId });
      if (!inv) return undefined;
      if ((inv.markers ?? []).includes(marker) !== withMarker) return { doc: inv, applied: false };
      const { capacity, seatsAvailable } = inv;
      const up = delta >= 0;
      const last = up ? capacity - delta : -delta; // the last count from which delta stays within bounds
      const within = up ? seatsAvailable <= last : seatsAvailable >= last;
      // The count and version this update leads to, for the event announcing it.
      const after = { seatsAvailable: within ? seatsAvailable + delta : up ? capacity : 0, version: inv.version + 1 };
      const entry = announce?.(after);
      const doc = await this.inventory.findOneAndUpdate(
        {
          _id: eventId,
          capacity,
          markers: withMarker ? marker : { $ne: marker },
          // Holds exactly when the read above did, unless another process changed the document.
          seatsAvailable: within ? (up ? { $lte: last } : { $gte: last }) : up ? { $gt: last } : { $lt: last },
        },
        {
          ...(within ? { $inc: { seatsAvailable: delta, version: 1 } } : { $set: { seatsAvailable: up ? capacity : 0 }, $inc: { version: 1 } }),
          ...(withMarker ? { $pull: { markers: marker } } : { $push: { markers: marker } }),
          ...(entry ? { $push: { ...(withMarker ? {} : { markers: marker }), outbox: toStoredEntry(entry) } } : {}),
        },
        { returnDocument: "after" },
      );
      if (doc) {
        const stored = entry && doc.outbox?.find((e) => e.id === entry.id);
        if (stored) this.inventoryOutbox.noteWritten(eventId, stored);
        return { doc, applied: true };
      }
      // Another process changed the inventory since the read: look again.
    }
    throw new Error(`inventory ${eventId} kept changing, try again`);
  }

  /**
   * findOneAndUpdate({ _id: id, ...when }, update), returning the document
   * after it, or null when it did not match. The caller holds the
   * document's lock. On MongoDB it is that one conditional write. On
   * FerretDB 1.24 a filter other than exactly `{ _id }` reads and decodes
   * the whole collection (no pushdown to SQLite; see `explain`), which made
   * every booking cost O(all bookings): there it reads by _id, checks `when`
   * in JavaScript and writes by _id. Used for the bookings collection, which
   * grows with every booking. That is atomic only within this process,
   * which is what FerretDB 1.x supports anyway (one writer per database).
   */
  private async updateWhere<T extends { _id: string }>(
    collection: Collection<T>,
    id: string,
    when: Filter<T>,
    update: UpdateFilter<T>,
  ): Promise<WithId<T> | null> {
    const byId = { _id: id } as Filter<T>;
    if (!(await this.isFerret())) return collection.findOneAndUpdate({ ...when, ...byId }, update, { returnDocument: "after" });
    const doc = await collection.findOne(byId);
    if (!doc || !matchesFilter(doc as Document, when as Record<string, unknown>)) return null;
    return collection.findOneAndUpdate(byId, update, { returnDocument: "after" });
  }

  /** Whether the server is FerretDB (its buildInfo names its version); asked once, again after a failure. */
  private isFerret(): Promise<boolean> {
    this.ferret ??= this.database
      .admin()
      .command({ buildInfo: 1 })
      .then((info) => typeof info.ferretdbVersion === "string")
      .catch((err: unknown) => {
        this.ferret = undefined;
        throw err;
      });
    return this.ferret;
  }

  /**
   * One conditional update: `update` (and the outbox entry, pushed by the
   * same update) applies only while the booking matches `when`.
   */
  private transition(
    id: string,
    when: Filter<BookingDoc>,
    update: UpdateFilter<BookingDoc>,
    entry?: OutboxEntry,
  ): Promise<BookingRecord | undefined> {
    const full: UpdateFilter<BookingDoc> = { ...update, $set: { ...update.$set, updatedAt: new Date() } };
    if (entry) full.$push = { outbox: toStoredEntry(entry) };
    return this.bookingLock(id, async () => {
      // No projection: FerretDB 1.24's findAndModify rejects `fields`.
      const doc = await this.updateWhere(this.bookings, id, when, full);
      if (!doc) return undefined;
      const stored = entry && doc.outbox?.find((e) => e.id === entry.id);
      if (stored) this.outbox.noteWritten(id, stored);
      return fromBookingDoc(doc);
    });
  }
}

/** How often the outbox relay queries a whole collection (bookings, inventory) for entries it was not told about. */
const OUTBOX_SCAN_INTERVAL_MS = 2_000;

/** To a final state; the operation is over, so nobody owns it any more. */
// Ending an operation records whose inventory step it used (see the port).
const finish = (state: BookingStateName, by?: { reservedBy: string } | { releasedBy: string }): UpdateFilter<BookingDoc> => ({
  $set: { state, ...by },
  $unset: { opToken: "" },
});

const withoutOutbox = { projection: { outbox: 0 } };

const seatChange = (d: InventoryDoc): SeatChange => ({ seatsAvailable: d.seatsAvailable, version: d.version });

function fromInventoryDoc(d: InventoryDoc): Inventory {
  return {
    eventId: d._id,
    capacity: d.capacity,
    seatsAvailable: d.seatsAvailable,
    open: d.open,
    version: d.version,
    markers: d.markers ?? [],
  };
}

function toBookingDoc(b: BookingRecord): BookingDoc {
  return {
    _id: b.id,
    eventId: b.eventId,
    userId: b.userId,
    requestId: b.requestId,
    seats: b.seats,
    state: b.state,
    createdAt: b.createdAt,
    updatedAt: b.updatedAt,
    // Leave it out rather than store null (the driver writes undefined as null).
    ...(b.opToken !== undefined ? { opToken: b.opToken } : {}),
    outbox: [],
  };
}

function fromBookingDoc(d: Omit<BookingDoc, "outbox">): BookingRecord {
  return {
    id: d._id,
    eventId: d.eventId,
    userId: d.userId,
    requestId: d.requestId,
    seats: d.seats,
    state: d.state,
    createdAt: d.createdAt,
    updatedAt: d.updatedAt,
    ...(d.opToken !== undefined ? { opToken: d.opToken } : {}),
    ...(d.reservedBy !== undefined ? { reservedBy: d.reservedBy } : {}),
    ...(d.releasedBy !== undefined ? { releasedBy: d.releasedBy } : {}),
  };
}
