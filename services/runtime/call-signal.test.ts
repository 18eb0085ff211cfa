// LazyCallSignal behaves as an AbortSignal would for the forwarder and the
// upstream call, and callSignalOf keeps a signal an interceptor swapped in.
import { describe, expect, it } from "vitest";
import { LazyCallSignal, callSignalOf, fromAbortSignal } from "./call-signal.js";

describe("LazyCallSignal", () => {
  it("aborts once: listeners in order, removed ones not, later ones never, as AbortSignal's", () => {
    const lazy = new LazyCallSignal();
    const real = new AbortController();
    for (const [signal, abort] of [[lazy, (r: unknown) => lazy.abort(r)], [fromAbortSignal(real.signal), (r: unknown) => real.abort(r)]] as const) {
      const calls: string[] = [];
      signal.onAbort(() => calls.push(`a ${String(signal.reason)}`));
      const stop = signal.onAbort(() => calls.push("removed"));
      signal.onAbort(() => calls.push("b"));
      stop();
      expect(signal.aborted).toBe(false);
      expect(signal.reason).toBeUndefined();
      abort("first");
      abort("second");
      signal.onAbort(() => calls.push("too late"));
      expect(calls).toEqual(["a first", "b"]);
      expect(signal.aborted).toBe(true);
      expect(signal.reason).toBe("first");
    }
  });

  it("makes its AbortSignal on demand, aborted with the reason if the call already is", () => {
    const before = new LazyCallSignal();
    const signal = before.signal;
    expect(before.signal).toBe(signal);
    let heard: unknown;
    signal.addEventListener("abort", () => (heard = signal.reason));
    before.abort("gone");
    expect(heard).toBe("gone");

    const after = new LazyCallSignal();
    after.abort("gone");
    expect(after.signal.aborted).toBe(true);
    expect(after.signal.reason).toBe("gone");
    expect(after.abortReason).toBe("gone");
  });
});

describe("callSignalOf", () => {
  it("keeps the call's own signal through a getter or a spread copy, and honours one an interceptor swapped in", () => {
    const call = new LazyCallSignal();
    const req = {
      get signal() {
        return call.signal;
      },
    };
    expect(callSignalOf(req, call)).toBe(call);
    expect(callSignalOf({ ...req }, call)).toBe(call);
    const other = new AbortController();
    const swapped = callSignalOf({ ...req, signal: other.signal }, call);
    expect(swapped).not.toBe(call);
    other.abort("theirs");
    expect(swapped.aborted).toBe(true);
    expect(swapped.reason).toBe("theirs");
    expect(callSignalOf({ signal: other.signal }, undefined).reason).toBe("theirs");
  });
});
