import type { SubscribeResponse } from "../../gen/myevents/v1/notification_service_pb.js";

export type LiveStatus = { state: "connecting" } | { state: "live" } | { state: "reconnecting"; inMs: number; reason: string };

export interface LiveOptions {
  /** Opens the stream (NotificationService.Subscribe). */
  subscribe: (signal: AbortSignal) => AsyncIterable<SubscribeResponse>;
  onMessage: (message: SubscribeResponse) => void;
  onStatus: (status: LiveStatus) => void;
  /**
   * Called on each stream's first message: the server sends a heartbeat
   * once the subscription is registered, so every later change will
   * arrive, and anything before it may have been missed: reload now.
   */
  onResync?: () => void;
  signal: AbortSignal;
  /** First retry delay; doubles per failed attempt up to maxDelayMs. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  random?: () => number;
}

/**
 * Keeps a notification stream open for as long as `signal` is not aborted.
 * A stream that ends - the server closed it, it overflowed
 * (ResourceExhausted), the network dropped - is reopened after an
 * exponential backoff with jitter, so a restarted server is not stampeded.
 * The backoff resets once a stream delivers a message.
 */
export async function keepSubscribed(options: LiveOptions): Promise<void> {
  const base = options.baseDelayMs ?? 500;
  const max = options.maxDelayMs ?? 15_000;
  const random = options.random ?? Math.random;
  const { signal } = options;
  let failures = 0;
  while (!signal.aborted) {
    options.onStatus({ state: "connecting" });
    let reason = "the stream ended";
    let first = true;
    try {
      for await (const message of options.subscribe(signal)) {
        if (first) {
          first = false;
          failures = 0; // a working stream: the next break starts the backoff afresh
          options.onStatus({ state: "live" });
          options.onResync?.();
        }
        options.onMessage(message);
      }
    } catch (err) {
      if (signal.aborted) return;
      reason = err instanceof Error ? err.message : String(err);
    }
    if (signal.aborted) return;
    // "Equal jitter": between half and all of the capped exponential delay,
    // so reconnecting pages spread out but none hammers the server.
    const ceiling = Math.min(max, base * 2 ** failures);
    const inMs = Math.round(ceiling / 2 + (random() * ceiling) / 2);
    failures++;
    options.onStatus({ state: "reconnecting", inMs, reason });
    await sleep(inMs, signal);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
