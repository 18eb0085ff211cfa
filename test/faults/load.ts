// A steady booking load through the edge that remembers what every client
// was told, so that the invariants can compare it with what the databases hold.
import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { BookingState } from "../../gen/myevents/v1/booking_pb.js";
import { sleep } from "../support/eventually.js";
import { callerHeaders, type EdgeClients, type TestEvent } from "./client.js";

/** Codes a client may see while something is broken, and must retry (with the same request_id). */
export const RETRYABLE: ReadonlySet<Code> = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.Aborted]);
/** Codes a booking client may see at all: the retryable ones and FailedPrecondition (sold out). */
export const DOCUMENTED: ReadonlySet<Code> = new Set([...RETRYABLE, Code.FailedPrecondition]);

export interface BookingRequest {
  requestId: string;
  user: string;
  eventId: string;
  seats: number;
  /** The scenario running when the request started. */
  scenario: string;
  /** When the request was first sent (Date.now()). */
  startedAt: number;
  /** confirmed/rejected (sold out): a final answer; interrupted: still retrying when its budget ran out; failed: an undocumented code. */
  outcome: "pending" | "confirmed" | "rejected" | "interrupted" | "failed";
  bookingId?: string;
  /** Booking ids answered for this request_id (more than one would be a duplicate). */
  answers: Set<string>;
  cancel?: "wanted" | "done" | "interrupted" | "failed";
  /** Interrupted at first, then answered by a later retry with the same request_id. */
  recoveredByRetry?: boolean;
  error?: string;
}

/** Per-call latency and result, for throughput, error rate and p99 over time (soak). */
export interface CallSample {
  at: number;
  method: string;
  ms: number;
  /** undefined: OK. */
  code?: Code;
}

export interface LoadOptions {
  concurrency: number;
  /** Share of confirmed bookings cancelled again. */
  cancelRatio: number;
  /** Deadline of each call. */
  callTimeoutMs: number;
  /** How long one request keeps retrying before it counts as interrupted (retried again after recovery). */
  retryBudgetMs: number;
  /** Also read (ListEvents, GetEvent, ListBookings) between bookings: the soak's mixed load. */
  reads?: boolean;
  /** Users the load books as. */
  users?: number;
  /** Calls slower than this are still counted; samples are kept for `onSample` only. */
  onSample?: (sample: CallSample) => void;
}

export class BookingLoad {
  readonly requests: BookingRequest[] = [];
  /** Every error code seen by any call, with counts (by code name). */
  readonly codes = new Map<string, number>();
  /** Undocumented errors, for the failure message. */
  readonly unexpected: string[] = [];
  scenario = "warm-up";
  private running = false;
  private workers: Promise<void>[] = [];

  constructor(
    private readonly clients: EdgeClients,
    private readonly events: TestEvent[],
    private readonly opts: LoadOptions,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.workers = Array.from({ length: this.opts.concurrency }, (_, i) => this.worker(i));
  }

  /** Stops starting requests and waits for those in flight to end (answered or interrupted). */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
    this.workers = [];
  }

  /** One new booking request on `event`, retried until answered or out of budget. */
  async book(event: TestEvent, seats: number, budgetMs = this.opts.retryBudgetMs): Promise<BookingRequest> {
    const req: BookingRequest = {
      requestId: randomUUID(),
      user: `user-${Math.floor(Math.random() * (this.opts.users ?? 40))}`,
      eventId: event.id,
      seats,
      scenario: this.scenario,
      startedAt: Date.now(),
      outcome: "pending",
      answers: new Set(),
    };
    this.requests.push(req);
    await this.attemptBooking(req, budgetMs);
    return req;
  }

  /**
   * After recovery: asks again, with the same request_id, for every request
   * that had no answer (and cancels again those whose cancel had none).
   * Returns how many were still interrupted before.
   */
  async retryInterrupted(budgetMs: number): Promise<number> {
    const open = this.requests.filter((r) => r.outcome === "interrupted" || r.cancel === "interrupted");
    await Promise.all(
      open.map(async (req) => {
        if (req.outcome === "interrupted") {
          await this.attemptBooking(req, budgetMs);
          req.recoveredByRetry = isAnswered(req);
        }
        if (req.cancel === "interrupted") await this.attemptCancel(req, budgetMs);
      }),
    );
    return open.length;
  }

  private async worker(index: number): Promise<void> {
    await sleep(index * 7); // spread the first calls
    while (this.running) {
      // One small event sells out early: sold out (FailedPrecondition) is part of the load.
      const event = this.events[Math.random() < 0.2 ? 0 : 1 + Math.floor(Math.random() * (this.events.length - 1))] ?? this.events[0]!;
      const req = await this.book(event, 1 + Math.floor(Math.random() * 3));
      if (req.outcome === "confirmed" && Math.random() < this.opts.cancelRatio) {
        req.cancel = "wanted";
        await this.attemptCancel(req, this.opts.retryBudgetMs);
      }
      if (this.opts.reads) await this.read(req);
    }
  }

  private async read(req: BookingRequest): Promise<void> {
    const headers = await callerHeaders(req.user);
    await this.call("ListEvents", () => this.clients.events.listEvents({ pageSize: 20 }, { timeoutMs: this.opts.callTimeoutMs })).catch(() => {});
    await this.call("GetEvent", () => this.clients.events.getEvent({ id: req.eventId }, { timeoutMs: this.opts.callTimeoutMs })).catch(() => {});
    await this.call("ListBookings", () => this.clients.bookings.listBookings({ pageSize: 10 }, { headers, timeoutMs: this.opts.callTimeoutMs })).catch(
      () => {},
    );
  }

  private async attemptBooking(req: BookingRequest, budgetMs: number): Promise<void> {
    const headers = await callerHeaders(req.user);
    const result = await this.retried("CreateBooking", budgetMs, () =>
      this.clients.bookings.createBooking(
        { eventId: req.eventId, seats: req.seats, requestId: req.requestId },
        { headers, timeoutMs: this.opts.callTimeoutMs },
      ),
    );
    if (result.kind === "answer") {
      req.outcome = "confirmed";
      req.bookingId = result.value.booking!.id;
      req.answers.add(req.bookingId);
    } else if (result.kind === "error" && result.code === Code.FailedPrecondition) {
      req.outcome = "rejected";
    } else if (result.kind === "error") {
      req.outcome = "failed";
      req.error = result.error;
    } else req.outcome = "interrupted";
  }

  private async attemptCancel(req: BookingRequest, budgetMs: number): Promise<void> {
    const headers = await callerHeaders(req.user);
    const result = await this.retried("CancelBooking", budgetMs, () =>
      this.clients.bookings.cancelBooking({ id: req.bookingId! }, { headers, timeoutMs: this.opts.callTimeoutMs }),
    );
    if (result.kind === "answer" && result.value.booking?.state === BookingState.CANCELLED) req.cancel = "done";
    else if (result.kind === "answer") {
      req.cancel = "failed";
      req.error = `CancelBooking answered state ${result.value.booking?.state}`;
    } else if (result.kind === "error") {
      req.cancel = "failed";
      req.error = result.error;
    } else req.cancel = "interrupted";
  }

  /** Calls until answered or a non-retryable error, backing off; "interrupted" when the budget runs out. */
  private async retried<T>(
    method: string,
    budgetMs: number,
    run: () => Promise<T>,
  ): Promise<{ kind: "answer"; value: T } | { kind: "error"; code: Code; error: string } | { kind: "interrupted" }> {
    const giveUp = Date.now() + budgetMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return { kind: "answer", value: await this.call(method, run) };
      } catch (err) {
        const error = ConnectError.from(err);
        if (!RETRYABLE.has(error.code)) return { kind: "error", code: error.code, error: `${method}: ${Code[error.code]}: ${error.rawMessage}` };
        if (Date.now() > giveUp) return { kind: "interrupted" };
        await sleep(Math.min(50 * 2 ** attempt, 1_000));
      }
    }
  }

  /** Runs one call, counting its code and reporting its latency. */
  private async call<T>(method: string, run: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const result = await run();
      this.opts.onSample?.({ at: Date.now(), method, ms: performance.now() - started });
      return result;
    } catch (err) {
      const code = ConnectError.from(err).code;
      this.opts.onSample?.({ at: Date.now(), method, ms: performance.now() - started, code });
      this.codes.set(Code[code], (this.codes.get(Code[code]) ?? 0) + 1);
      if (!DOCUMENTED.has(code) && this.unexpected.length < 20) this.unexpected.push(`${method}: ${Code[code]}: ${ConnectError.from(err).rawMessage}`);
      throw err;
    }
  }
}

/** Whether the request got a final answer (a booking or sold out). */
function isAnswered(req: BookingRequest): boolean {
  return req.outcome === "confirmed" || req.outcome === "rejected";
}
