import type { OutboxEntry, OutboxSource } from "../../outbox/outbox.js";

/**
 * The BookingService's persistence port. Two adapters (memory.ts,
 * mongo.ts), one contract suite (repository.contract.ts).
 *
 * Consistency without multi-document transactions (FerretDB 1.x has none):
 * every method is ONE single-document atomic operation, and the service
 * composes them into small state machines that are safe to resume after a
 * crash at any step (see ../bookings.ts):
 *
 *   create: insertPending (booking PENDING, owned by a token T,
 *                          unique per user+request_id)
 *        -> reserveSeats   (inventory: seats -= n, marker "reserve:<id>:<T>:<n>")
 *        -> confirm        (booking CONFIRMED, reservedBy T, + BookingConfirmed
 *                          in its outbox)
 *        -> clearMarker    (inventory: marker removed)
 *   cancel: beginCancel (booking CANCELLING, owned by a token U)
 *        -> releaseSeats (inventory: seats += n, marker "release:<id>:cancel:<n>",
 *                        keyed by booking: once, whoever runs it)
 *        -> finishCancel (booking CANCELLED + BookingCancelled)
 *        -> (marker removed by recovery's sweep a while later)
 *
 * The marker makes the inventory step idempotent (it is applied at most
 * once per booking while the marker exists) and tells a recovering process
 * whether the step happened. Markers live only while an operation is in
 * progress, so the inventory document stays small.
 *
 * Each in-progress operation has one owner, named by the booking's
 * `opToken`; only the owner's confirm/finishCancel succeed. A recovering
 * process takes an abandoned operation over by swapping the token. For a
 * create it reserves again under its own marker; a reservation whose owner
 * lost the operation is undone with revertSeats, by that owner or by
 * recovery, whichever comes first (the marker makes it happen once), and
 * the booking's reservedBy tells the reservation that counts.
 */
export interface BookingRepository {
  // --- seat inventory, one document per event ---

  /** The event's inventory, created (open, all seats free) if absent; idempotent. */
  ensureInventory(eventId: string, capacity: number): Promise<Inventory>;
  getInventory(eventId: string): Promise<Inventory | undefined>;
  /** Stops all sales for the event (created closed if absent); idempotent. */
  closeInventory(eventId: string, capacity: number): Promise<void>;
  /**
   * Takes `seats` seats for one owner's step (`opKey`, see opKey()) in one
   * conditional update: only if the inventory is open, has enough seats,
   * and has no "reserve:<opKey>" marker yet (then the earlier result is
   * returned: applied at most once).
   */
  reserveSeats(eventId: string, opKey: string, seats: number): Promise<ReserveResult>;
  /**
   * Gives `seats` back for a cancelled booking, at most once while the
   * "release:<opKey>" marker exists, never above capacity.
   */
  releaseSeats(eventId: string, opKey: string, seats: number): Promise<SeatChange>;
  /**
   * Undoes a reserve (delta = -seats taken → gives them back) or a release
   * (takes them again) in one update, only while `marker` is present, and
   * removes the marker. No-op when the marker is absent. `announce`
   * makes the domain event of the change (it gets the count and version
   * after it), stored in the inventory's outbox by the same update.
   * Returns the change, or undefined when it was not applied.
   */
  revertSeats(eventId: string, marker: string, seatsToAdd: number, announce?: (change: SeatChange) => OutboxEntry): Promise<SeatChange | undefined>;
  /** Inventories that hold markers (for recovery of abandoned operations). */
  listMarked(limit: number): Promise<Inventory[]>;
  /** Whether the inventory holds the marker (e.g. "reserve:<bookingId>"). */
  hasMarker(eventId: string, marker: string): Promise<boolean>;
  /** Removes the marker (no-op when absent); the inventory as it is afterwards, undefined if there is none. */
  clearMarker(eventId: string, marker: string): Promise<Inventory | undefined>;

  // --- bookings ---

  /**
   * Stores a new PENDING booking. If the user already has a booking with the
   * same request_id, stores nothing and returns that one instead.
   */
  insertPending(booking: BookingRecord): Promise<{ inserted: true } | { inserted: false; existing: BookingRecord }>;
  getBooking(id: string): Promise<BookingRecord | undefined>;
  /** Removes a booking that is still PENDING and owned by `token` (its reservation failed). */
  deletePending(id: string, token: string): Promise<void>;
  /**
   * PENDING -> CONFIRMED, storing the BookingConfirmed entry with it.
   * Undefined unless PENDING and owned by `token`.
   */
  confirm(id: string, token: string, entry: OutboxEntry): Promise<BookingRecord | undefined>;
  /**
   * CONFIRMED -> CANCELLING, owned by `token` (only its holder continues the
   * cancellation; a recovering process takes over with a new token).
   * Undefined if the booking is not CONFIRMED.
   */
  beginCancel(id: string, token: string): Promise<BookingRecord | undefined>;
  /**
   * Replaces the owner token of a PENDING or CANCELLING booking (recovery);
   * undefined if state or token changed meanwhile. Also bumps updatedAt.
   */
  takeOver(id: string, oldToken: string, newToken: string): Promise<BookingRecord | undefined>;
  /**
   * CANCELLING -> CANCELLED with the BookingCancelled entry, recording whose
   * release counts (`releasedBy`, default `token`). Undefined unless
   * CANCELLING and owned by `token`.
   */
  finishCancel(id: string, token: string, entry: OutboxEntry, releasedBy?: string): Promise<BookingRecord | undefined>;
  /** CONFIRMED or CANCELLING -> CANCELLED because the event was cancelled (no seats released). */
  cancelForEvent(id: string, entry: OutboxEntry): Promise<BookingRecord | undefined>;
  /** A user's bookings, newest first (by id, which is time-ordered), any state but PENDING. */
  listByUser(userId: string, page: { limit: number; before?: string }): Promise<{ items: BookingRecord[]; more: boolean }>;
  /** Ids of the event's bookings in the given states (for sweeps; bounded by `limit`). */
  listByEvent(eventId: string, states: BookingStateName[], limit: number): Promise<BookingRecord[]>;
  /** PENDING or CANCELLING bookings not updated since `before` (abandoned operations). */
  listStale(before: Date, limit: number): Promise<BookingRecord[]>;

  /** Where this store's outbox entries wait for the relay. */
  outboxSources(): OutboxSource[];
  ping(): Promise<void>;
  close(): Promise<void>;
}

export type BookingStateName = "PENDING" | "CONFIRMED" | "CANCELLING" | "CANCELLED";

export interface BookingRecord {
  id: string;
  eventId: string;
  userId: string;
  requestId: string;
  seats: number;
  state: BookingStateName;
  createdAt: Date;
  /** Last state change; used to find abandoned operations. */
  updatedAt: Date;
  /** Owner of the in-progress operation (set while PENDING or CANCELLING). */
  opToken?: string;
  /** Token of the operation whose reservation the confirmed booking holds. */
  reservedBy?: string;
  /** Token of the operation whose release ended the booking. */
  releasedBy?: string;
}

export interface Inventory {
  eventId: string;
  capacity: number;
  seatsAvailable: number;
  open: boolean;
  /** Grows by one with every seat change. */
  version: number;
  /** Markers of operations in progress ("reserve:<id>", "release:<id>"). */
  markers: string[];
}

export interface SeatChange {
  seatsAvailable: number;
  version: number;
  /** For releaseSeats: applied by this call (false: applied before). */
  fresh?: boolean;
}

export type ReserveResult =
  /** fresh: applied by this call (false: the marker showed it was applied before). */
  | ({ ok: true; fresh: boolean } & SeatChange)
  | { ok: false; reason: "unknown_event" | "closed" | "sold_out"; seatsAvailable: number };

export const reserveMarker = (opKey: string) => `reserve:${opKey}`;
export const releaseMarker = (opKey: string) => `release:${opKey}`;

/**
 * The key of one owner's inventory step: booking id, owner token and seats,
 * so that a marker says whose step it is and how to undo it.
 */
export function opKey(bookingId: string, token: string, seats: number): string {
  return `${bookingId}:${token}:${seats}`;
}

/** A whole marker ("reserve:<id>:<token>:<seats>") split into its parts; undefined if malformed. */
export function parseMarker(marker: string): { kind: "reserve" | "release"; bookingId: string; token: string; seats: number } | undefined {
  const [kind = "", bookingId = "", token = "", seats = ""] = marker.split(":");
  const n = Number(seats);
  if (kind !== "reserve" && kind !== "release") return undefined;
  return bookingId && token && Number.isSafeInteger(n) && n > 0 ? { kind, bookingId, token, seats: n } : undefined;
}
