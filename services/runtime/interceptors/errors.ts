import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { isUnavailable } from "../errors.js";

/**
 * Turns what a handler throws into a status a client can act on: a
 * ConnectError passes through; a dependency outage becomes Unavailable
 * (retryable); anything else is a bug and becomes Internal with a generic
 * message, never leaking internals. The original error stays as `cause`
 * for the logs.
 */
export function errorsInterceptor(): Interceptor {
  // Not async, and one promise per call: while AsyncLocalStorage carries the
  // trace context, every promise of every call costs a little.
  return (next) => (req) => {
    let res;
    try {
      res = next(req);
    } catch (err) {
      return Promise.reject(normalize(err, req.signal));
    }
    const fail = (err: unknown) => {
      throw normalize(err, req.signal);
    };
    if (req.method.methodKind === "unary") return res.catch(fail);
    return res.then((r) => (r.stream ? { ...r, message: normalizeStream(r.message, req.signal) } : r), fail);
  };
}

/**
 * What errorsInterceptor() does, for an interceptor that observes the call
 * anyway (observingInterceptor's `settleErrors`): the same mapping without
 * an interceptor and a promise of its own per call.
 */
export const settleErrors = { error: normalize, stream: normalizeStream };

// A server stream fails while it is being read, after next() returned.
async function* normalizeStream<T>(source: AsyncIterable<T>, signal: AbortSignal) {
  try {
    yield* source;
  } catch (err) {
    throw normalize(err, signal);
  }
}

function normalize(err: unknown, signal: AbortSignal): ConnectError {
  if (err instanceof ConnectError) return err;
  // The handler failed because the call's deadline passed or it was cancelled.
  if (signal.aborted) return ConnectError.from(signal.reason);
  if (isUnavailable(err)) {
    return new ConnectError("a backing service is unavailable, try again later", Code.Unavailable, undefined, undefined, err);
  }
  return new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}
