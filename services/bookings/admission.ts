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
  /**
   * Per event with calls in progress: how many, and the recent time one call
   * occupied a place in its queue (ms, moving average; 0 until one finished).
   * Forgotten when the event's last call ends, so no estimate outlives its queue.
   */
  private readonly perEvent = new Map<string, Queue>();
  /** The same for the whole process (the database is shared by all events). */
  private readonly process: Queue = { count: 0, slotMs: 0 };

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
    const event = this.perEvent.get(eventId) ?? { count: 0, slotMs: 0 };
    const [ahead, aheadInProcess] = [event.count, this.process.count];
    if (ahead >= this.maxPerEvent) {
      throw new ShedError("event_queue_full", `too many bookings in progress for event ${JSON.stringify(eventId)} (${ahead})`);
    }
    if (aheadInProcess >= this.maxInFlight) {
      throw new ShedError("process_full", `too many bookings in progress (${aheadInProcess})`);
    }
    // Only while calls are queued ahead: with none, the call is served at once (and
    // serving calls is what refreshes the estimates).
    if (deadlineAt !== undefined && aheadInProcess > 0) {
      const left = deadlineAt - this.now();
      const expected = Math.max(event.slotMs * (ahead + 1), this.process.slotMs * (aheadInProcess + 1));
      if (left < expected) {
        throw new ShedError("deadline_too_short", `the call's deadline (${Math.max(0, Math.round(left))} ms left) is shorter than the expected wait (${Math.round(expected)} ms)`);
      }
    }
    event.count++;
    this.perEvent.set(eventId, event);
    this.process.count++;
    const started = this.now();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const took = this.now() - started;
      // What this call cost per position it had in each queue.
      finish(this.process, took / (aheadInProcess + 1));
      if (finish(event, took / (ahead + 1)) === 0) this.perEvent.delete(eventId);
    };
  }

  /** Calls in progress for `eventId`, or in the process (for tests and metrics). */
  inProgress(eventId?: string): number {
    return eventId === undefined ? this.process.count : (this.perEvent.get(eventId)?.count ?? 0);
  }
}

interface Queue {
  count: number;
  slotMs: number;
}

/** One call left the queue: update the average, forget it when the queue is empty. Returns the calls left. */
function finish(queue: Queue, slotMs: number): number {
  queue.count--;
  queue.slotMs = queue.count === 0 ? 0 : queue.slotMs === 0 ? slotMs : queue.slotMs * 0.9 + slotMs * 0.1;
  return queue.count;
}
