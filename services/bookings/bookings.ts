import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { BookingSchema, BookingState, type Booking } from "../../gen/myevents/v1/booking_pb.js";
import { BookingCancelledSchema, BookingConfirmedSchema, ReservationUndoneSchema } from "../../gen/myevents/v1/domain_events_pb.js";
import { outboxEntry } from "../outbox/outbox.js";
import { newId } from "../runtime/ids.js";
import type { Logger } from "../runtime/logger.js";
import { BookingAdmission, ShedError } from "./admission.js";
import type { BookingMetrics } from "./metrics.js";
import {
  opKey,
  parseMarker,
  reserveMarker,
  type BookingRecord,
  type BookingRepository,
  type SeatChange,
} from "./repository/repository.js";

/** What BookingService needs to know of an event it has not heard of yet. */
export interface EventLookup {
  /** The event's capacity and whether it is still on sale; undefined if there is no such event. */
  find(eventId: string): Promise<{ capacity: number; cancelled: boolean } | undefined>;
}

export interface BookingsOptions {
  /** An operation not finished after this long is taken over by recovery. */
  staleAfterMs?: number;
  /** How long a duplicate request waits for the first one to finish. */
  settleTimeoutMs?: number;
  /** Called after every write that added outbox entries (the relay's kick). */
  onOutbox?: () => void;
  /** Counts confirmed and cancelled bookings and seats; none when absent. */
  metrics?: BookingMetrics;
  /** Load shedding of create(); default: BookingAdmission's defaults. */
  admission?: BookingAdmission;
  now?: () => Date;
}

/**
 * The booking workflows over single-document atomic steps (see the port's
 * header comment): never oversells, survives a crash at any step (recover()
 * finishes or undoes abandoned operations), and gives one booking per
 * (user, request_id) however often a request is repeated.
 */
export class Bookings {
  private readonly staleAfterMs: number;
  private readonly settleTimeoutMs: number;
  private readonly onOutbox: () => void;
  private readonly metrics: BookingMetrics | undefined;
  private readonly admission: BookingAdmission;
  private readonly now: () => Date;

  constructor(
    private readonly repo: BookingRepository,
    private readonly events: EventLookup,
    private readonly logger: Logger,
    options: BookingsOptions = {},
  ) {
    this.staleAfterMs = options.staleAfterMs ?? 30_000;
    this.settleTimeoutMs = options.settleTimeoutMs ?? 5_000;
    this.onOutbox = options.onOutbox ?? (() => {});
    this.metrics = options.metrics;
    this.admission = options.admission ?? new BookingAdmission();
    this.now = options.now ?? (() => new Date());
  }

  /**
   * Reserves seats and confirms the booking; repeats of the same request
   * return the same booking. Under overload it refuses at once with
   * Unavailable (see BookingAdmission), before writing anything;
   * `deadlineAt` (epoch ms) is when the caller gives up.
   */
  async create(userId: string, eventId: string, seats: number, requestId: string, deadlineAt?: number): Promise<BookingRecord> {
    let finished: () => void;
    try {
      finished = this.admission.admit(eventId, deadlineAt);
    } catch (err) {
      if (err instanceof ShedError) this.metrics?.shed(err.reason);
      throw err;
    }
    try {
      return await this.createAdmitted(userId, eventId, seats, requestId);
    } finally {
      finished();
    }
  }

  private async createAdmitted(userId: string, eventId: string, seats: number, requestId: string): Promise<BookingRecord> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const token = newId();
      const at = this.now();
      const record: BookingRecord = { id: newId(), eventId, userId, requestId, seats, state: "PENDING", createdAt: at, updatedAt: at, opToken: token };
      const inserted = await this.repo.insertPending(record);
      if (inserted.inserted) return this.reserveAndConfirm(record, token);

      const existing = inserted.existing;
      if (existing.eventId !== eventId || existing.seats !== seats) {
        throw new ConnectError(
          `request_id ${JSON.stringify(requestId)} was already used for a booking of ${existing.seats} seat(s) for event ${existing.eventId}`,
          Code.AlreadyExists,
        );
      }
      const settled = await this.settle(existing.id);
      if (settled) return settled;
      // The first attempt failed and was removed: this request may try again.
    }
    throw new ConnectError("the booking could not be completed, try again", Code.Aborted);
  }

  async get(userId: string, id: string): Promise<BookingRecord> {
    const record = await this.repo.getBooking(id);
    // Someone else's booking is reported as missing: its existence is not the caller's business.
    if (!record || record.userId !== userId || record.state === "PENDING") throw bookingNotFound(id);
    return record;
  }

  /** The user's bookings, newest first. */
  list(userId: string, page: { limit: number; before?: string }) {
    return this.repo.listByUser(userId, page);
  }

  /** Cancels a confirmed booking and releases its seats; cancelling again returns it unchanged. */
  async cancel(userId: string, id: string): Promise<BookingRecord> {
    let record = await this.repo.getBooking(id);
    if (!record || record.userId !== userId) throw bookingNotFound(id);
    if (record.state === "PENDING") {
      record = await this.settle(id);
      if (!record) throw bookingNotFound(id);
    }
    if (record.state === "CANCELLED") return record;
    if (record.state === "CANCELLING") return (await this.settle(id)) ?? record;

    const token = newId();
    const owned = await this.repo.beginCancel(id, token);
    if (!owned) return (await this.settle(id)) ?? (await this.get(userId, id));
    return this.releaseAndFinish(owned, token);
  }

  /** EventCreated: the inventory starts with every seat free (idempotent). */
  async eventCreated(eventId: string, capacity: number): Promise<void> {
    await this.repo.ensureInventory(eventId, capacity);
  }

  /**
   * EventCancelled: stop sales, then cancel the event's bookings
   * (idempotent, resumable). A booking that reserved before sales stopped
   * but confirms after this sweep cancels itself (see reserveAndConfirm).
   */
  async eventCancelled(eventId: string, capacity: number): Promise<void> {
    await this.repo.closeInventory(eventId, capacity);
    for (;;) {
      const batch = await this.repo.listByEvent(eventId, ["CONFIRMED", "CANCELLING"], 100);
      if (batch.length === 0) return;
      for (const booking of batch) await this.cancelForEvent(booking);
    }
  }

  private async cancelForEvent(booking: BookingRecord): Promise<BookingRecord | undefined> {
    const inventory = await this.repo.getInventory(booking.eventId);
    const cancelled = { ...booking, state: "CANCELLED" as const };
    const change = { seatsAvailable: inventory?.seatsAvailable ?? 0, version: inventory?.version ?? 0 };
    const done = await this.repo.cancelForEvent(booking.id, this.cancelledEntry(cancelled, change));
    if (done) {
      this.onOutbox();
      this.metrics?.cancelled("event_cancelled", done.seats);
    }
    return done;
  }

  /**
   * Finishes or undoes operations whose owner stopped (a crash, a lost
   * connection): PENDING and CANCELLING bookings older than staleAfterMs,
   * and markers left behind by finished operations. Returns how many it
   * handled; run it periodically. One failing item does not stop the rest.
   */
  async recover(): Promise<number> {
    const cutoff = new Date(this.now().getTime() - this.staleAfterMs);
    let handled = 0;
    // Bookings finished in this round keep their markers at least until the next.
    const justHandled = new Set<string>();
    const attempt = async (what: Record<string, unknown>, work: () => Promise<boolean>) => {
      try {
        if (await work()) handled++;
      } catch (err) {
        this.logger.warn("recovery step failed; retrying next round", { ...what, error: (err as Error).message });
      }
    };
    for (const stale of await this.repo.listStale(cutoff, 100)) {
      await attempt({ booking_id: stale.id }, async () => {
        const token = newId();
        const owned = await this.repo.takeOver(stale.id, stale.opToken ?? "", token);
        if (!owned) return false;
        justHandled.add(owned.id);
        this.logger.warn("recovering abandoned booking operation", { booking_id: owned.id, state: owned.state });
        // A reservation of the old owner is not adopted: if that owner was
        // only stalled it would undo it. Reserving anew holds seats twice
        // for a while (never oversells); the marker sweep undoes the old one.
        // A release needs no such care: it is keyed by booking, so it
        // happens once whoever does it.
        if (owned.state === "PENDING") await this.reserveAndConfirm(owned, token).catch(() => undefined);
        else await this.releaseAndFinish(owned, token);
        return true;
      });
    }
    for (const inventory of await this.repo.listMarked(100)) {
      for (const marker of inventory.markers) {
        if (justHandled.has(parseMarker(marker)?.bookingId ?? "")) continue;
        await attempt({ event_id: inventory.eventId, marker }, () => this.sweepMarker(inventory.eventId, marker, cutoff));
      }
    }
    return handled;
  }

  /**
   * A reserve marker of the step the booking holds (reservedBy) is only
   * removed; one of an owner that lost its operation is undone once that
   * owner had time to undo it itself. A release marker stays until the
   * booking has been CANCELLED for staleAfterMs, so that a stalled owner
   * waking up late still finds it and cannot release twice.
   */
  private async sweepMarker(eventId: string, marker: string, cutoff: Date): Promise<boolean> {
    const step = parseMarker(marker);
    if (!step) return false;
    const booking = await this.repo.getBooking(step.bookingId);
    if (step.kind === "release") {
      if (booking?.state !== "CANCELLED" || booking.updatedAt > cutoff) return false;
      await this.repo.clearMarker(eventId, marker);
      return true;
    }
    if (booking?.opToken === step.token) return false; // its owner is still at work
    if (booking?.reservedBy === step.token) {
      await this.repo.clearMarker(eventId, marker);
      return true;
    }
    if (booking && booking.updatedAt > cutoff) return false; // give a late owner time to undo its own step
    this.logger.warn("undoing an abandoned reservation", { event_id: eventId, marker });
    await this.undoReservation(eventId, marker, step.bookingId, step.seats);
    return true;
  }

  private async reserveAndConfirm(record: BookingRecord, token: string): Promise<BookingRecord> {
    const key = opKey(record.id, token, record.seats);
    let reserved = await this.repo.reserveSeats(record.eventId, key, record.seats);
    if (!reserved.ok && reserved.reason === "unknown_event") {
      const event = await this.events.find(record.eventId);
      if (!event) {
        await this.repo.deletePending(record.id, token);
        throw new ConnectError(`event ${JSON.stringify(record.eventId)} not found`, Code.NotFound);
      }
      if (event.cancelled) await this.repo.closeInventory(record.eventId, event.capacity);
      else await this.repo.ensureInventory(record.eventId, event.capacity);
      reserved = await this.repo.reserveSeats(record.eventId, key, record.seats);
    }
    if (!reserved.ok) {
      await this.repo.deletePending(record.id, token);
      if (reserved.reason === "closed") {
        throw new ConnectError(`event ${JSON.stringify(record.eventId)} is cancelled and takes no bookings`, Code.FailedPrecondition);
      }
      if (reserved.reason === "sold_out" && reserved.seatsAvailable === 0) {
        throw new ConnectError(`event ${JSON.stringify(record.eventId)} is sold out`, Code.FailedPrecondition);
      }
      throw new ConnectError(`only ${reserved.seatsAvailable} seat(s) left for event ${JSON.stringify(record.eventId)}`, Code.FailedPrecondition);
    }
    const confirmedRecord = { ...record, state: "CONFIRMED" as const };
    const confirmed = await this.repo.confirm(record.id, token, this.confirmedEntry(confirmedRecord, reserved));
    if (!confirmed) {
      // Recovery took this operation over meanwhile; undo only what this call applied.
      await this.undoReservation(record.eventId, reserveMarker(key), record.id, record.seats);
      return this.settled(record.id);
    }
    this.onOutbox();
    this.metrics?.confirmed(confirmed.seats);
    // The inventory as the marker's removal left it (one round trip for both).
    const inventory = await this.repo.clearMarker(record.eventId, reserveMarker(key));
    // Sales may have stopped between the reservation and now, after the
    // EventCancelled sweep looked: then this booking is cancelled too.
    if (inventory?.open === false) return (await this.cancelForEvent(confirmed)) ?? confirmed;
    return confirmed;
  }

  /**
   * The release is keyed by booking (not by owner), so it happens at most
   * once whoever runs it: a recovering process repeats it harmlessly, and a
   * stalled owner waking up late finds it done. A CANCELLING booking always
   * ends CANCELLED, so a release is never undone; its marker is removed
   * later by the sweep.
   */
  private async releaseAndFinish(record: BookingRecord, token: string): Promise<BookingRecord> {
    const key = releaseKey(record);
    const released = await this.repo.releaseSeats(record.eventId, key, record.seats);
    const cancelledRecord = { ...record, state: "CANCELLED" as const };
    const finished = await this.repo.finishCancel(record.id, token, this.cancelledEntry(cancelledRecord, released), key);
    if (!finished) return this.settled(record.id); // recovery took over; it finishes
    this.onOutbox();
    this.metrics?.cancelled("user", finished.seats);
    return finished;
  }

  /** The booking once recovery (which took it over) has finished with it. */
  private async settled(id: string): Promise<BookingRecord> {
    const record = await this.settle(id);
    if (!record) throw new ConnectError("the booking could not be completed, try again with the same request_id", Code.Aborted);
    return record;
  }

  /** Waits until another call's operation on the booking ends; undefined if the booking went away. */
  private async settle(id: string): Promise<BookingRecord | undefined> {
    const deadline = Date.now() + this.settleTimeoutMs;
    for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
      const record = await this.repo.getBooking(id);
      if (!record) return undefined;
      if (record.state === "CONFIRMED" || record.state === "CANCELLED") return record;
      if (Date.now() > deadline) {
        throw new ConnectError("the booking is still being processed, retry with the same request_id", Code.Unavailable);
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  /**
   * Gives a reservation's seats back and announces it (ReservationUndone,
   * in the inventory's outbox by the same update): no booking message
   * carries this change, and the EventService's seat copy must follow it.
   */
  private async undoReservation(eventId: string, marker: string, bookingId: string, seats: number): Promise<void> {
    const undone = await this.repo.revertSeats(eventId, marker, seats, (change) => {
      const event = create(ReservationUndoneSchema, {
        id: newId(),
        occurredAt: timestampFromDate(this.now()),
        eventId,
        bookingId,
        seats,
        seatsAvailable: change.seatsAvailable,
        inventoryVersion: BigInt(change.version),
      });
      return outboxEntry(ReservationUndoneSchema, event, "booking.reservation_undone");
    });
    if (undone) this.onOutbox();
  }

  private confirmedEntry(record: BookingRecord, change: SeatChange) {
    const event = create(BookingConfirmedSchema, {
      id: newId(),
      occurredAt: timestampFromDate(this.now()),
      booking: toBookingMessage(record),
      seatsAvailable: change.seatsAvailable,
      inventoryVersion: BigInt(change.version),
    });
    return outboxEntry(BookingConfirmedSchema, event, "booking.confirmed");
  }

  private cancelledEntry(record: BookingRecord, change: SeatChange) {
    const event = create(BookingCancelledSchema, {
      id: newId(),
      occurredAt: timestampFromDate(this.now()),
      booking: toBookingMessage(record),
      seatsAvailable: change.seatsAvailable,
      inventoryVersion: BigInt(change.version),
    });
    return outboxEntry(BookingCancelledSchema, event, "booking.cancelled");
  }
}

export function toBookingMessage(record: BookingRecord): Booking {
  return create(BookingSchema, {
    id: record.id,
    eventId: record.eventId,
    userId: record.userId,
    seats: record.seats,
    state: record.state === "CANCELLED" || record.state === "CANCELLING" ? BookingState.CANCELLED : BookingState.CONFIRMED,
    createTime: timestampFromDate(record.createdAt),
  });
}

/** The key of a booking's one release step (see releaseAndFinish). */
function releaseKey(record: BookingRecord): string {
  return opKey(record.id, "cancel", record.seats);
}

function bookingNotFound(id: string): ConnectError {
  return new ConnectError(`booking ${JSON.stringify(id)} not found`, Code.NotFound);
}
