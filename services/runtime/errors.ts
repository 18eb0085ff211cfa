import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";

export interface FieldViolation {
  /** Path of the offending field in the request, e.g. "event.end_time". */
  field: string;
  description: string;
}

// At most this many violations are reported. The message and details
// travel in HTTP/2 trailers, and a hostile request (200 bad halls) would
// otherwise make trailers larger than a peer accepts, which ends the whole
// connection (FRAME_SIZE_ERROR) and every other call on it.
const MAX_REPORTED_VIOLATIONS = 20;

/**
 * InvalidArgument carrying a google.rpc.BadRequest with one violation per
 * bad field (the first 20), so clients can show each message next to its input.
 */
export function invalidArgument(violations: FieldViolation[]): ConnectError {
  const reported = violations.slice(0, MAX_REPORTED_VIOLATIONS);
  const more = violations.length - reported.length;
  const summary = reported.map((v) => `${v.field}: ${v.description}`).join("; ") + (more > 0 ? `; and ${more} more` : "");
  return new ConnectError(summary, Code.InvalidArgument, undefined, [
    { desc: BadRequestSchema, value: { fieldViolations: reported } },
  ]);
}

export function notFound(what: string, id: string): ConnectError {
  return new ConnectError(`${what} ${JSON.stringify(id)} not found`, Code.NotFound);
}

/** Collects violations while a request is checked, then throws them all at once. */
export class Violations {
  private readonly list: FieldViolation[] = [];

  add(field: string, description: string): this {
    this.list.push({ field, description });
    return this;
  }

  get empty(): boolean {
    return this.list.length === 0;
  }

  throwIfAny(): void {
    if (this.list.length > 0) throw invalidArgument(this.list);
  }
}

// Driver errors that mean "the database cannot be reached right now": the
// caller may retry, so they answer Unavailable rather than Internal.
const UNAVAILABLE_ERROR_NAMES = new Set([
  "MongoServerSelectionError",
  "MongoNetworkError",
  "MongoNetworkTimeoutError",
  "MongoTopologyClosedError",
  "MongoNotConnectedError",
  "MongoPoolClearedError",
]);

// Socket errors a driver sometimes lets through unwrapped (the MongoDB driver
// 6.22 throws Node's EPIPE "This socket has been ended by the other party"
// when it writes to a connection the database side closed).
const UNAVAILABLE_SOCKET_CODES = new Set(["EPIPE", "ECONNRESET", "ECONNREFUSED", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH"]);

/** Whether an error thrown by a dependency is transient unavailability. */
export function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return UNAVAILABLE_ERROR_NAMES.has(err.name) || UNAVAILABLE_SOCKET_CODES.has((err as NodeJS.ErrnoException).code ?? "");
}

/**
 * How long before the caller's deadline (as this process counts it) a
 * caller that goes away is taken to have given up at its deadline: the
 * caller's clock started before the request arrived (sending, connecting,
 * queueing), so its timer fires a little earlier.
 */
export const DEADLINE_GRACE_MS = 100;

/**
 * What a call whose caller went away before its answer is recorded as (log
 * line, metrics): DeadlineExceeded when the caller's deadline (ms since the
 * epoch) had (all but) passed, since that is what the caller saw; Canceled
 * otherwise. Found with connect-node clients: at their deadline they reset
 * HTTP/2 streams with INTERNAL_ERROR, which connect-node's handler reports
 * as Internal. Shared by the gateway and the services.
 */
export function callerGone(deadline: number | undefined): ConnectError {
  if (deadline !== undefined && deadline - Date.now() <= DEADLINE_GRACE_MS) return new ConnectError("the caller's deadline passed", Code.DeadlineExceeded);
  return new ConnectError("the client went away", Code.Canceled);
}
