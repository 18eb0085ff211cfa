import { Code, ConnectError } from "@connectrpc/connect";

export interface AdmissionOptions {
  /** CreateBooking calls of one event in progress at once; more are refused. */
  maxPerEvent?: number;
  /** CreateBooking calls in progress in this process at once; more are refused. */
  maxInFlight?: number;
  now?: () => number;
}

export type ShedReason = "event_queue_full" | "process_full" | "deadline_too_short";

/** Thrown for a refused call: retryable, and nothing was written. */
export class ShedError extends ConnectError {
  constructor(
    readonly reason: ShedReason,
    message: string,
  ) {
    super(`${message}; nothing was booked, retry later with the same request_id`, Code.Unavailable);
  }
}

/**
 * Load shedding for CreateBooking (issue #8). Bookings of one event
 * serialise on its inventory document (one lock per document, see
 * outbox/lock.ts), so past the event's capacity the queue, and every
 * call's wait, would grow until all calls time out. Instead a call is
 * admitted only while its event has fewer than maxPerEvent calls in
 * progress, the process fewer than maxInFlight, and, when calls of its
 * event are in progress, its deadline leaves time for them plus its own
 * (estimated from recent calls). Refusals happen before any write, so a retry with the same
 * request_id is safe and books once.
 */
export class BookingAdmission {
  private readonly maxPerEvent: number;
  private readonly maxInFlight: number;
  private readonly now: () => number;
  private readonly perEvent = new Map<string, number>();
  private inFlight = 0;
  /** Recent time one call occupies its event's queue (ms, moving average); 0 until a call finished. */
  private slotMs = 0;

  constructor(options: AdmissionOptions = {}) {
    this.maxPerEvent = options.maxPerEvent ?? 32;
    this.maxInFlight = options.maxInFlight ?? 256;
    this.now = options.now ?? Date.now;
  }

  /**
   * Admits a call for `eventId` or throws a ShedError (Unavailable).
   * `deadlineAt`: when the caller gives up (epoch ms), if it said.
   * Call the returned function once the call has finished, however it ended.
   */
  admit(eventId: string, deadlineAt?: number): () => void {
    const ahead = this.perEvent.get(eventId) ?? 0;
    if (ahead >= this.maxPerEvent) {
      throw new ShedError("event_queue_full", `too many bookings in progress for event ${JSON.stringify(eventId)} (${ahead})`);
    }
    if (this.inFlight >= this.maxInFlight) {
      throw new ShedError("process_full", `too many bookings in progress (${this.inFlight})`);
    }
    // Only while calls are queued ahead: with none, the call is served at once, and
    // admitting it is also what refreshes the estimate (an estimate left high by an
    // outage would otherwise refuse every short-deadline call for good).
    if (deadlineAt !== undefined && ahead > 0) {
      const left = deadlineAt - this.now();
      const expected = this.slotMs * (ahead + 1);
      if (left < expected) {
        throw new ShedError("deadline_too_short", `the call's deadline (${Math.max(0, Math.round(left))} ms left) is shorter than the expected wait (${Math.round(expected)} ms)`);
      }
    }
    this.perEvent.set(eventId, ahead + 1);
    this.inFlight++;
    const started = this.now();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.inFlight--;
      const left = (this.perEvent.get(eventId) ?? 1) - 1;
      if (left > 0) this.perEvent.set(eventId, left);
      else this.perEvent.delete(eventId);
      // What this call cost per position it had in the queue.
      const slot = (this.now() - started) / (ahead + 1);
      this.slotMs = this.slotMs === 0 ? slot : this.slotMs * 0.9 + slot * 0.1;
    };
  }

  /** Calls in progress for `eventId` (for tests and metrics). */
  inProgress(eventId?: string): number {
    return eventId === undefined ? this.inFlight : (this.perEvent.get(eventId) ?? 0);
  }
}
