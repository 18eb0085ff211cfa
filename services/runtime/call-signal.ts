import type { AbortState } from "./interceptors/outcome.js";

/**
 * What the fast paths (the services' gRPC one, the gateway's forwarder and
 * upstream call) read of a call's cancellation (the caller went away, its
 * deadline passed): an AbortSignal's state and one listener. An AbortController with a listener added and removed cost
 * ~3 µs per call (a micro-benchmark on Node 20), about 2% of the gateway's
 * CPU per unary call, and on the fast path nobody needs the signal itself
 * unless the call is aborted.
 */
export interface CallSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  /** Runs `listener` when the call is aborted (not if it already is); the returned function removes it. */
  onAbort(listener: () => void): () => void;
  /** The same as an AbortSignal, for the APIs that take one (streams, interceptors). */
  readonly signal: AbortSignal;
}

/**
 * The cancellation of a call whose request was made with `given` (its
 * signal a getter of `given.signal`): `given`, unless an interceptor gave
 * the request another signal (a spread copy of the request keeps the call's).
 */
export function callSignalOf(req: { readonly signal: AbortSignal }, given: CallSignal | undefined): CallSignal {
  if (given !== undefined && (Object.getOwnPropertyDescriptor(req, "signal")?.get !== undefined || req.signal === given.signal)) return given;
  return fromAbortSignal(req.signal);
}

/** A real AbortSignal seen as a CallSignal (connect-node's calls, REST). */
export function fromAbortSignal(signal: AbortSignal): CallSignal {
  return new AbortSignalView(signal);
}

// A class, not an object literal with getters: those are new closures per call (shared-getters.ts).
class AbortSignalView implements CallSignal {
  constructor(readonly signal: AbortSignal) {}

  get aborted(): boolean {
    return this.signal.aborted;
  }

  get reason(): unknown {
    return this.signal.reason;
  }

  onAbort(listener: () => void): () => void {
    this.signal.addEventListener("abort", listener);
    return () => this.signal.removeEventListener("abort", listener);
  }
}

/**
 * A call's cancellation whose AbortSignal is made only if someone asks for
 * it. Also the call's ABORT_STATE (outcome.ts), so that the observing
 * interceptor tells a caller that went away without making the signal.
 */
export class LazyCallSignal implements CallSignal, AbortState {
  /** Why the call was aborted; undefined while it is not (it is always aborted with a reason). */
  abortReason: unknown = undefined;
  #controller: AbortController | undefined;
  #listeners: Array<() => void> | undefined;

  get aborted(): boolean {
    return this.abortReason !== undefined;
  }

  get reason(): unknown {
    return this.abortReason;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.abortReason !== undefined) this.#controller.abort(this.abortReason);
    }
    return this.#controller.signal;
  }

  onAbort(listener: () => void): () => void {
    (this.#listeners ??= []).push(listener);
    return () => {
      const i = this.#listeners?.indexOf(listener) ?? -1;
      if (i >= 0) this.#listeners!.splice(i, 1);
    };
  }

  /** Aborts once: the signal (if made) and then the listeners, in order, as an AbortSignal would. */
  abort(reason: unknown): void {
    if (this.abortReason !== undefined) return;
    this.abortReason = reason;
    this.#controller?.abort(reason);
    const listeners = this.#listeners;
    this.#listeners = undefined;
    if (listeners) for (const listener of listeners) listener();
  }
}
