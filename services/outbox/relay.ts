import { Counter, Gauge, type Registry } from "prom-client";
import type { Publisher } from "../messaging/port.js";
import type { Logger } from "../runtime/logger.js";
import { toOutgoing, type OutboxSource, type PendingEntry } from "./outbox.js";

export interface OutboxRelayOptions {
  /** Entries taken from each source per round (default 100). */
  batchSize?: number;
  /** Wait between rounds when idle and not kicked (default 250 ms). */
  pollIntervalMs?: number;
  /** Longest wait between retries while publishing fails (default 5000 ms). */
  maxBackoffMs?: number;
  /** Where the outbox_* metrics are registered; none when absent. */
  registry?: Registry;
}

interface Taken {
  source: OutboxSource;
  batch: PendingEntry[];
}

/**
 * Publishes pending outbox entries, then removes them: at-least-once. An
 * entry stays pending until the broker confirmed it, so a broker outage or
 * a crash before publishing loses nothing; a crash after publishing but
 * before markSent publishes it again, and consumers drop the duplicate by
 * message id (processed.ts).
 */
export class OutboxRelay {
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  private readonly maxBackoffMs: number;
  private readonly pendingGauge: Gauge<"source">;
  private readonly publishedCounter: Counter<"source">;
  private readonly failureCounter: Counter;
  /** Oldest pending entry per source as of the last round; the age gauge is computed at scrape time. */
  private readonly oldest = new Map<string, Date | undefined>();

  private loop?: Promise<void>;
  private stopping = false;
  private kicked = false;
  private sleeper?: { wake: () => void; kickable: boolean };
  private failedAttempts = 0;
  private failingSince = 0;

  constructor(
    private readonly sources: OutboxSource[],
    private readonly publisher: Publisher,
    private readonly logger: Logger,
    options: OutboxRelayOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 100;
    this.pollIntervalMs = options.pollIntervalMs ?? 250;
    this.maxBackoffMs = options.maxBackoffMs ?? 5000;
    const registers = options.registry ? [options.registry] : [];
    const oldest = this.oldest;
    this.pendingGauge = new Gauge({
      name: "outbox_pending_messages",
      help: "Outbox entries not yet published, per source.",
      labelNames: ["source"],
      registers,
    });
    new Gauge({
      name: "outbox_oldest_pending_age_seconds",
      help: "Age of the oldest unpublished outbox entry, per source (0 when none).",
      labelNames: ["source"],
      registers,
      collect() {
        for (const [source, at] of oldest) this.set({ source }, at ? Math.max(0, (Date.now() - at.getTime()) / 1000) : 0);
      },
    });
    this.publishedCounter = new Counter({
      name: "outbox_published_total",
      help: "Outbox entries published and confirmed by the broker, per source.",
      labelNames: ["source"],
      registers,
    });
    this.failureCounter = new Counter({
      name: "outbox_publish_failures_total",
      help: "Publish attempts the broker did not confirm (entries stay pending and are retried).",
      registers,
    });
    for (const s of sources) {
      this.pendingGauge.set({ source: s.name }, 0);
      this.publishedCounter.inc({ source: s.name }, 0);
      this.oldest.set(s.name, undefined);
    }
  }

  /** Starts the publishing loop (no-op when running). */
  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.loop = this.run();
  }

  /**
   * Runs a round now rather than after the poll interval: writers call it
   * right after a write. It does not cut a retry back-off short, so writes
   * during a broker outage don't turn into hot retries.
   */
  kick(): void {
    this.kicked = true;
    if (this.sleeper?.kickable) this.sleeper.wake();
  }

  /** Ends the loop once the round in flight (publish and markSent) has finished. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.sleeper?.wake();
    await this.loop;
    this.loop = undefined;
  }

  /** Resolves once every source reports nothing pending; rejects after timeoutMs. */
  async drained(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const counts = await Promise.all(this.sources.map((s) => s.stats().then((st) => st.count, () => NaN)));
      if (counts.every((c) => c === 0)) return;
      if (Date.now() >= deadline) {
        const left = this.sources.map((s, i) => `${s.name}=${counts[i]}`).join(", ");
        throw new Error(`outbox not drained after ${timeoutMs} ms (pending: ${left})`);
      }
      this.kick();
      await sleep(Math.min(20, Math.max(1, deadline - Date.now())));
    }
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      this.kicked = false; // kicks from now on may concern writes this round misses
      let full = false;
      try {
        full = await this.round();
        this.recovered();
      } catch (err) {
        this.failed(err instanceof RoundError ? err : new RoundError("a round", undefined, err));
        // Exponential back-off from the poll interval; kicks don't cut it short.
        await this.sleep(Math.min(this.maxBackoffMs, this.pollIntervalMs * 2 ** (this.failedAttempts - 1)), false);
        continue;
      }
      if (!full && !this.kicked) await this.sleep(this.pollIntervalMs, true);
    }
  }

  /** One round; resolves whether a source had a full batch (more may wait), throws a RoundError. */
  private async round(): Promise<boolean> {
    let failure: RoundError | undefined;
    const taken: Taken[] = [];
    for (const source of this.sources) {
      try {
        taken.push({ source, batch: await source.pending(this.batchSize) });
      } catch (err) {
        failure ??= new RoundError("reading pending entries", source.name, err);
      }
    }

    // One publish call: the broker confirms the whole set at once.
    const messages = taken.flatMap((t) => t.batch.map((p) => toOutgoing(p.entry)));
    let published = messages.length === 0;
    if (!published) {
      try {
        await this.publisher.publish(messages);
        published = true;
      } catch (err) {
        this.failureCounter.inc();
        failure = new RoundError("publishing", undefined, err);
      }
    }

    for (const { source, batch } of taken) {
      let gone = published;
      if (published && batch.length > 0) {
        this.publishedCounter.inc({ source: source.name }, batch.length);
        try {
          await markAllSent(source, batch);
        } catch (err) {
          gone = false; // (some of) these go out again next round
          failure ??= new RoundError("removing published entries", source.name, err);
        }
      }
      await this.updateGauges(source, batch, gone);
    }
    if (failure) throw failure;
    return taken.some((t) => t.batch.length === this.batchSize);
  }

  /** `gone`: the batch was published and removed. */
  private async updateGauges(source: OutboxSource, batch: PendingEntry[], gone: boolean): Promise<void> {
    let count: number;
    let oldest: Date | undefined;
    if (batch.length < this.batchSize) {
      // A partial batch was the whole backlog: no need for another scan.
      const left = gone ? [] : batch;
      count = left.length;
      oldest = left[0]?.entry.occurredAt;
    } else {
      try {
        ({ count, oldest } = await source.stats());
      } catch {
        return; // the source is failing; the round reports it
      }
    }
    this.pendingGauge.set({ source: source.name }, count);
    this.oldest.set(source.name, oldest);
  }

  // Log an outage once when it starts and once when it ends, not per attempt.
  private failed(err: RoundError): void {
    this.failedAttempts++;
    const fields = { ...(err.source ? { source: err.source } : {}), attempt: this.failedAttempts, err: err.cause };
    if (this.failedAttempts === 1) {
      this.failingSince = Date.now();
      this.logger.error(`outbox relay: ${err.what} failed; entries stay pending, retrying with back-off`, fields);
    } else {
      this.logger.debug(`outbox relay: ${err.what} failed again`, fields);
    }
  }

  private recovered(): void {
    if (this.failedAttempts === 0) return;
    this.logger.info("outbox relay: recovered", { failedAttempts: this.failedAttempts, outageMs: Date.now() - this.failingSince });
    this.failedAttempts = 0;
  }

  private sleep(ms: number, kickable: boolean): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(wake, ms);
      function wake() {
        clearTimeout(timer);
        resolve();
      }
      this.sleeper = { wake, kickable };
    }).finally(() => (this.sleeper = undefined));
  }
}

class RoundError extends Error {
  constructor(
    readonly what: string,
    readonly source: string | undefined,
    override readonly cause: unknown,
  ) {
    super(`${what} failed`);
  }
}

/** Documents in parallel; one document's entries in order (each markSent rewrites the document). */
async function markAllSent(source: OutboxSource, batch: PendingEntry[]): Promise<void> {
  const byDoc = new Map<string, string[]>();
  for (const { docId, entry } of batch) {
    const ids = byDoc.get(docId);
    if (ids) ids.push(entry.id);
    else byDoc.set(docId, [entry.id]);
  }
  const results = await Promise.allSettled(
    [...byDoc].map(async ([docId, ids]) => {
      for (const id of ids) await source.markSent(docId, id);
    }),
  );
  const failed = results.find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
