import { MemoryOutbox } from "../../outbox/memory.js";
import type { OutboxEntry, OutboxSource } from "../../outbox/outbox.js";
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
 * The embedded default: everything in process memory, gone on restart.
 * Mirrors MongoBookingRepository exactly (repository.contract.ts proves it).
 * Every method changes state in one synchronous step (no await in between),
 * the in-memory equivalent of one atomic single-document update; outbox
 * entries are added in that same step. It stores and hands out copies, so
 * no caller can reach stored state.
 */
export class MemoryBookingRepository implements BookingRepository {
  private readonly inventories = new Map<string, Inventory>();
  private readonly bookings = new Map<string, BookingRecord>();
  /** (userId, requestId) -> booking id: the Mongo adapter's unique index. */
  private readonly byRequest = new Map<string, string>();
  private readonly outbox = new MemoryOutbox("bookings");
  /** Domain events of inventory changes that no booking announces (ReservationUndone). */
  private readonly inventoryOutbox = new MemoryOutbox("inventory");

  // --- seat inventory ---

  async ensureInventory(eventId: string, capacity: number): Promise<Inventory> {
    let inv = this.inventories.get(eventId);
    if (!inv) {
      inv = { eventId, capacity, seatsAvailable: capacity, open: true, version: 0, markers: [] };
      this.inventories.set(eventId, inv);
    }
    return copyInventory(inv);
  }

  async getInventory(eventId: string): Promise<Inventory | undefined> {
    const inv = this.inventories.get(eventId);
    return inv && copyInventory(inv);
  }

  async closeInventory(eventId: string, capacity: number): Promise<void> {
    const inv = this.inventories.get(eventId);
    if (inv) inv.open = false;
    else this.inventories.set(eventId, { eventId, capacity, seatsAvailable: capacity, open: false, version: 0, markers: [] });
  }

  async reserveSeats(eventId: string, bookingId: string, seats: number): Promise<ReserveResult> {
    checkSeats(seats);
    const inv = this.inventories.get(eventId);
    const marker = reserveMarker(bookingId);
    // Same order of checks as the Mongo adapter's diagnosis of a refused update.
    if (!inv) return { ok: false, reason: "unknown_event", seatsAvailable: 0 };
    if (inv.markers.includes(marker)) return { ok: true, fresh: false, ...seatChange(inv) };
    if (!inv.open) return { ok: false, reason: "closed", seatsAvailable: inv.seatsAvailable };
    if (inv.seatsAvailable < seats) return { ok: false, reason: "sold_out", seatsAvailable: inv.seatsAvailable };
    inv.seatsAvailable -= seats;
    inv.version += 1;
    inv.markers.push(marker);
    return { ok: true, fresh: true, ...seatChange(inv) };
  }

  async releaseSeats(eventId: string, bookingId: string, seats: number): Promise<SeatChange> {
    checkSeats(seats);
    const inv = this.inventories.get(eventId);
    if (!inv) throw new UnknownInventoryError(eventId);
    const marker = releaseMarker(bookingId);
    if (inv.markers.includes(marker)) return { ...seatChange(inv), fresh: false };
    addClamped(inv, seats);
    inv.markers.push(marker);
    return { ...seatChange(inv), fresh: true };
  }

  async revertSeats(eventId: string, marker: string, seatsToAdd: number, announce?: (change: SeatChange) => OutboxEntry): Promise<SeatChange | undefined> {
    checkDelta(seatsToAdd);
    const inv = this.inventories.get(eventId);
    if (!inv?.markers.includes(marker)) return undefined;
    addClamped(inv, seatsToAdd);
    inv.markers = inv.markers.filter((m) => m !== marker);
    const change = seatChange(inv);
    if (announce) this.inventoryOutbox.add(eventId, copyEntry(announce(change)));
    return change;
  }

  async listMarked(limit: number): Promise<Inventory[]> {
    return [...this.inventories.values()]
      .filter((inv) => inv.markers.length > 0)
      .sort((a, b) => compare(a.eventId, b.eventId))
      .slice(0, Math.max(0, limit))
      .map(copyInventory);
  }

  async hasMarker(eventId: string, marker: string): Promise<boolean> {
    return this.inventories.get(eventId)?.markers.includes(marker) ?? false;
  }

  async clearMarker(eventId: string, marker: string): Promise<Inventory | undefined> {
    const inv = this.inventories.get(eventId);
    if (!inv) return undefined;
    inv.markers = inv.markers.filter((m) => m !== marker);
    return copyInventory(inv);
  }

  // --- bookings ---

  async insertPending(booking: BookingRecord): Promise<{ inserted: true } | { inserted: false; existing: BookingRecord }> {
    const key = requestKey(booking);
    const existing = this.bookings.get(this.byRequest.get(key) ?? "");
    if (existing) return { inserted: false, existing: copyBooking(existing) };
    // Mongo rejects a reused _id with a duplicate key error; so does this.
    if (this.bookings.has(booking.id)) throw new Error(`duplicate booking id ${booking.id}`);
    this.bookings.set(booking.id, copyBooking(booking));
    this.byRequest.set(key, booking.id);
    return { inserted: true };
  }

  async getBooking(id: string): Promise<BookingRecord | undefined> {
    const b = this.bookings.get(id);
    return b && copyBooking(b);
  }

  async deletePending(id: string, token: string): Promise<void> {
    const b = this.bookings.get(id);
    if (b?.state !== "PENDING" || b.opToken !== token) return;
    this.bookings.delete(id);
    this.byRequest.delete(requestKey(b));
  }

  async confirm(id: string, token: string, entry: OutboxEntry): Promise<BookingRecord | undefined> {
    return this.transition(id, ownedIn(token, "PENDING"), (b) => finish(b, "CONFIRMED", { reservedBy: token }), entry);
  }

  async beginCancel(id: string, token: string): Promise<BookingRecord | undefined> {
    return this.transition(id, (b) => b.state === "CONFIRMED", (b) => {
      b.state = "CANCELLING";
      b.opToken = token;
    });
  }

  async takeOver(id: string, oldToken: string, newToken: string): Promise<BookingRecord | undefined> {
    return this.transition(id, ownedIn(oldToken, "PENDING", "CANCELLING"), (b) => (b.opToken = newToken));
  }

  async finishCancel(id: string, token: string, entry: OutboxEntry, releasedBy = token): Promise<BookingRecord | undefined> {
    return this.transition(id, ownedIn(token, "CANCELLING"), (b) => finish(b, "CANCELLED", { releasedBy }), entry);
  }

  async cancelForEvent(id: string, entry: OutboxEntry): Promise<BookingRecord | undefined> {
    const from = (b: BookingRecord) => b.state === "CONFIRMED" || b.state === "CANCELLING";
    return this.transition(id, from, (b) => finish(b, "CANCELLED"), entry);
  }

  async listByUser(userId: string, page: { limit: number; before?: string }): Promise<{ items: BookingRecord[]; more: boolean }> {
    const { limit, before } = page;
    const matching = [...this.bookings.values()]
      .filter((b) => b.userId === userId && b.state !== "PENDING" && (before === undefined || b.id < before))
      .sort((a, b) => compare(b.id, a.id));
    return { items: matching.slice(0, Math.max(0, limit)).map(copyBooking), more: matching.length > limit };
  }

  async listByEvent(eventId: string, states: BookingStateName[], limit: number): Promise<BookingRecord[]> {
    return [...this.bookings.values()]
      .filter((b) => b.eventId === eventId && states.includes(b.state))
      .sort((a, b) => compare(a.id, b.id))
      .slice(0, Math.max(0, limit))
      .map(copyBooking);
  }

  async listStale(before: Date, limit: number): Promise<BookingRecord[]> {
    return [...this.bookings.values()]
      .filter((b) => (b.state === "PENDING" || b.state === "CANCELLING") && b.updatedAt < before)
      .sort((a, b) => a.updatedAt.getTime() - b.updatedAt.getTime() || compare(a.id, b.id))
      .slice(0, Math.max(0, limit))
      .map(copyBooking);
  }

  outboxSources(): OutboxSource[] {
    return [this.outbox, this.inventoryOutbox];
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}

  /** Applies `change` (and stores `entry`) if the booking matches `when`, all in one step. */
  private transition(
    id: string,
    when: (b: BookingRecord) => boolean,
    change: (b: BookingRecord) => void,
    entry?: OutboxEntry,
  ): BookingRecord | undefined {
    const b = this.bookings.get(id);
    if (!b || !when(b)) return undefined;
    change(b);
    b.updatedAt = new Date();
    if (entry) this.outbox.add(id, copyEntry(entry));
    return copyBooking(b);
  }
}

/** Releasing seats of an event that has no inventory: the booking's data is inconsistent. */
export class UnknownInventoryError extends Error {
  constructor(readonly eventId: string) {
    super(`no seat inventory for event ${eventId}`);
    this.name = "UnknownInventoryError";
  }
}

/** Seat counts are validated by the service; a bad one here is a programming error. */
export function checkSeats(seats: number): void {
  if (!Number.isSafeInteger(seats) || seats < 1) throw new RangeError(`seats must be a positive integer, got ${seats}`);
}

export function checkDelta(delta: number): void {
  if (!Number.isSafeInteger(delta)) throw new RangeError(`seat change must be an integer, got ${delta}`);
}

/**
 * seatsAvailable += delta, kept within [0, capacity], and one more version.
 * The bounds only bite if the counts are already inconsistent; see the
 * Mongo adapter's addSeats for why clamping beats refusing.
 */
function addClamped(inv: Inventory, delta: number): void {
  inv.seatsAvailable = Math.min(inv.capacity, Math.max(0, inv.seatsAvailable + delta));
  inv.version += 1;
}

const ownedIn =
  (token: string, ...states: BookingStateName[]) =>
  (b: BookingRecord) =>
    states.includes(b.state) && b.opToken === token;

/** To a final state; the operation is over, so nobody owns it any more. */
function finish(b: BookingRecord, state: BookingStateName, by?: { reservedBy: string } | { releasedBy: string }): void {
  b.state = state;
  delete b.opToken;
  Object.assign(b, by);
}

const seatChange = (inv: Inventory): SeatChange => ({ seatsAvailable: inv.seatsAvailable, version: inv.version });

const copyInventory = (inv: Inventory): Inventory => ({ ...inv, markers: [...inv.markers] });

const requestKey = (b: BookingRecord) => `${b.userId}\u0000${b.requestId}`;

// Drops an undefined opToken, as the Mongo adapter never stores one.
function copyBooking({ opToken, ...b }: BookingRecord): BookingRecord {
  return { ...b, createdAt: new Date(b.createdAt), updatedAt: new Date(b.updatedAt), ...(opToken !== undefined ? { opToken } : {}) };
}

function copyEntry(e: OutboxEntry): OutboxEntry {
  return { ...e, body: new Uint8Array(e.body), occurredAt: new Date(e.occurredAt) };
}

// Plain code-unit order, as MongoDB compares (ASCII) strings.
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
