import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { BookingSchema, BookingState, type Booking } from "../../gen/myevents/v1/booking_pb.js";
import { BookingCancelledSchema, BookingConfirmedSchema } from "../../gen/myevents/v1/domain_events_pb.js";
import { outboxEntry } from "../outbox/outbox.js";
import { newId } from "../runtime/ids.js";
import type { Logger } from "../runtime/logger.js";
import {
  opKey,
  parseMarker,
  releaseMarker,
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
    this.now = options.now ?? (() => new Date());
  }

  /** Reserves seats and confirms the booking; repeats of the same request return the same booking. */
  async create(userId: string, eventId: string, seats: number, requestId: string): Promise<BookingRecord> {
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

  /** EventCancelled: stop sales, then cancel the event's bookings (idempotent, resumable). */
  async eventCancelled(eventId: string, capacity: number): Promise<void> {
    await this.repo.closeInventory(eventId, capacity);
    for (;;) {
      const batch = await this.repo.listByEvent(eventId, ["CONFIRMED", "CANCELLING"], 100);
      if (batch.length === 0) break;
      for (const booking of batch) {
        const inventory = await this.repo.getInventory(eventId);
        const cancelled = { ...booking, state: "CANCELLED" as const };
        await this.repo.cancelForEvent(booking.id, this.cancelledEntry(cancelled, { seatsAvailable: inventory?.seatsAvailable ?? 0, version: inventory?.version ?? 0 }));
      }
      this.onOutbox();
    }
  }

  /**
   * Finishes or undoes operations whose owner stopped (a crash, a lost
   * connection): PENDING and CANCELLING bookings older than staleAfterMs,
   * and markers left behind by finished operations. Returns how many it
   * handled; run it periodically.
   */
  async recover(): Promise<number> {
    const cutoff = new Date(this.now().getTime() - this.staleAfterMs);
    let handled = 0;
    for (const stale of await this.repo.listStale(cutoff, 100)) {
      const token = newId();
      const owned = await this.repo.takeOver(stale.id, stale.opToken ?? "", token);
      if (!owned) continue;
      this.logger.warn("recovering abandoned booking operation", { booking_id: owned.id, state: owned.state });
      if (owned.state === "PENDING") {
        // A reservation of the old owner is not adopted: if that owner was
        // only stalled it would undo it. Reserving anew holds seats twice
        // for a while (never oversells); the marker sweep below undoes the
        // old one.
        await this.reserveAndConfirm(owned, token).catch(() => undefined);
      } else {
        const inventory = await this.repo.getInventory(owned.eventId);
        const earlier = inventory?.markers.find((m) => m.startsWith(`release:${owned.id}:`));
        const step = earlier ? parseMarker(earlier.slice("release:".length)) : undefined;
        await this.releaseAndFinish(owned, token, earlier && step ? { marker: earlier, token: step.token } : undefined);
      }
      handled++;
    }
    // Markers of finished or abandoned inventory steps: the step the booking
    // holds (reservedBy/releasedBy) is only unmarked; any other is undone.
    for (const inventory of await this.repo.listMarked(100)) {
      for (const marker of inventory.markers) {
        const step = parseMarker(marker.slice(marker.indexOf(":") + 1));
        if (!step) continue;
        const booking = await this.repo.getBooking(step.bookingId);
        if (booking?.opToken === step.token) continue; // its owner is still at work
        const holds = step.token === (marker.startsWith("reserve:") ? booking?.reservedBy : booking?.releasedBy);
        if (holds) await this.repo.clearMarker(inventory.eventId, marker);
        else {
          if (booking && booking.updatedAt > cutoff) continue; // give a late owner time to undo its own step
          const seatsToAdd = marker.startsWith("reserve:") ? step.seats : -step.seats;
          this.logger.warn("undoing an abandoned inventory step", { event_id: inventory.eventId, marker });
          await this.repo.revertSeats(inventory.eventId, marker, seatsToAdd);
        }
        handled++;
      }
    }
    return handled;
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
      await this.repo.revertSeats(record.eventId, reserveMarker(key), record.seats);
      return this.settled(record.id);
    }
    this.onOutbox();
    await this.repo.clearMarker(record.eventId, reserveMarker(key));
    return confirmed;
  }

  /**
   * `adopt`: recovery of an abandoned cancellation whose owner already
   * released the seats; its release is kept rather than repeated. (A
   * repeated release could oversell; a kept one at worst holds seats back
   * if that owner was only stalled and undoes its own step.)
   */
  private async releaseAndFinish(record: BookingRecord, token: string, adopt?: { marker: string; token: string }): Promise<BookingRecord> {
    const key = adopt ? undefined : opKey(record.id, token, record.seats);
    const inventory = adopt ? await this.repo.getInventory(record.eventId) : undefined;
    const released = key
      ? await this.repo.releaseSeats(record.eventId, key, record.seats)
      : { seatsAvailable: inventory?.seatsAvailable ?? 0, version: inventory?.version ?? 0 };
    const cancelledRecord = { ...record, state: "CANCELLED" as const };
    const finished = await this.repo.finishCancel(record.id, token, this.cancelledEntry(cancelledRecord, released), adopt?.token ?? token);
    if (adopt) {
      if (finished) await this.repo.clearMarker(record.eventId, adopt.marker);
      this.onOutbox();
      return finished ?? record;
    }
    if (!finished) {
      await this.repo.revertSeats(record.eventId, releaseMarker(key!), -record.seats);
      return this.settled(record.id);
    }
    this.onOutbox();
    await this.repo.clearMarker(record.eventId, releaseMarker(key!));
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

function bookingNotFound(id: string): ConnectError {
  return new ConnectError(`booking ${JSON.stringify(id)} not found`, Code.NotFound);
}
