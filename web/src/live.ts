import type { SubscribeResponse } from "../../gen/myevents/v1/notification_service_pb.js";

export type LiveStatus = { state: "connecting" } | { state: "live" } | { state: "reconnecting"; inMs: number; reason: string };

export interface LiveOptions {
  /** Opens the stream (NotificationService.Subscribe); calls `opened` when the server answers. */
  subscribe: (signal: AbortSignal, opened: () => void) => AsyncIterable<SubscribeResponse>;
  onMessage: (message: SubscribeResponse) => void;
  onStatus: (status: LiveStatus) => void;
  /** Called when a stream opens again after a gap: changes may have been missed, reload. */
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
  let gap = false;
  while (!signal.aborted) {
    options.onStatus({ state: "connecting" });
    let reason = "the stream ended";
    const opened = () => {
      options.onStatus({ state: "live" });
      if (gap) options.onResync?.();
      gap = false;
    };
    try {
      for await (const message of options.subscribe(signal, opened)) {
        failures = 0; // delivering, so healthy: the next break starts the backoff afresh
        options.onMessage(message);
      }
    } catch (err) {
      if (signal.aborted) return;
      reason = err instanceof Error ? err.message : String(err);
    }
    if (signal.aborted) return;
    gap = true;
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
