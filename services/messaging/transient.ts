import type { IncomingMessage } from "./port.js";

export interface TransientRetryOptions {
  /** Whether a failure is an outage of a dependency (e.g. the database) rather than a bad message. */
  isTransient(err: unknown): boolean;
  /** True once the consumer is shutting down: give the message back instead of waiting on. */
  stopping(): boolean;
  /** Called before each wait, so the outage shows in the log. */
  onRetry?(err: unknown, attempt: number, delayMs: number): void;
  minDelayMs?: number;
  maxDelayMs?: number;
}

/**
 * Retries a handler in place while it fails because a dependency is down.
 *
 * Why: a failed delivery counts towards the queue's redelivery limit, and
 * past it the message is dead-lettered. During a database outage every
 * message fails within seconds, so without this a 10 s outage dead-lettered
 * valid BookingConfirmed messages and their effect was lost (found by the
 * fault suite, test/faults). Holding the message unacknowledged while the
 * database is away keeps it (prefetch bounds how many are held), and the
 * limit only counts real failures of a message. On shutdown the error is
 * rethrown, so the message goes back to the queue.
 */
export function retryWhileUnavailable(
  handle: (message: IncomingMessage) => Promise<void>,
  opts: TransientRetryOptions,
): (message: IncomingMessage) => Promise<void> {
  const min = opts.minDelayMs ?? 100;
  const max = opts.maxDelayMs ?? 5_000;
  return async (message) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await handle(message);
      } catch (err) {
        if (!opts.isTransient(err) || opts.stopping()) throw err;
        const delay = Math.min(max, min * 2 ** (attempt - 1));
        opts.onRetry?.(err, attempt, delay);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  };
}
