import type {
  BroadcastOptions,
  BroadcastSubscription,
  Consumer,
  ConsumerOptions,
  IncomingMessage,
  MessageBus,
  OutgoingMessage,
} from "./port.js";
import { broadcastSettings, consumerSettings, isWellFormed } from "./settings.js";
import type { BroadcastSettings, ConsumerSettings } from "./settings.js";

/**
 * In-process bus for the embedded default (every service in one process).
 * Mirrors the RabbitMQ adapter: topic routing into one queue per consumer
 * name (several consumers of a name compete for its messages), queues that
 * keep messages while no consumer runs, prefetch-bounded concurrency,
 * redelivery until `maxDeliveries`, then a per-name dead-letter list;
 * broadcast subscriptions get their own copy of what is published while
 * they listen. Timestamps are truncated to the second, as AMQP carries them. Nothing
 * survives the process.
 */
export class MemoryMessageBus implements MessageBus {
  readonly system = "in_process";
  private readonly queues = new Map<string, Queue>();
  private readonly consumers = new Set<MemoryConsumer>();
  private readonly broadcasts = new Set<MemoryBroadcast>();
  private closed = false;
  private dispatchScheduled = false;

  async publish(messages: OutgoingMessage[]): Promise<void> {
    if (this.closed) throw new Error("memory bus: closed");
    for (const m of messages) {
      // Snapshot now: the caller may reuse its buffers once publish resolves.
      const message: OutgoingMessage = {
        routingKey: m.routingKey,
        messageId: m.messageId,
        type: m.type,
        body: m.body.slice(),
        timestamp: new Date(Math.floor(m.timestamp.getTime() / 1000) * 1000),
        ...(m.traceparent === undefined ? {} : { traceparent: m.traceparent }),
        ...(m.tracestate === undefined ? {} : { tracestate: m.tracestate }),
      };
      for (const queue of this.queues.values()) {
        if ([...queue.bindings].some((pattern) => topicMatches(pattern, m.routingKey))) {
          queue.ready.push({ message, attempts: 0 });
        }
      }
      for (const listener of this.broadcasts) listener.offer(message);
    }
    this.scheduleDispatch();
  }

  async consume(options: ConsumerOptions): Promise<Consumer> {
    if (this.closed) throw new Error("memory bus: closed");
    const settings = consumerSettings(options);
    let queue = this.queues.get(settings.name);
    if (!queue) {
      queue = new Queue(settings.maxDeliveries);
      this.queues.set(settings.name, queue);
    } else if (queue.maxDeliveries !== settings.maxDeliveries) {
      // Like a RabbitMQ queue argument, the limit is fixed when the queue is first declared.
      throw new Error(
        `memory bus: queue ${settings.name} exists with maxDeliveries ${queue.maxDeliveries}, not ${settings.maxDeliveries}`,
      );
    }
    for (const key of settings.routingKeys) queue.bindings.add(key);
    const consumer = new MemoryConsumer(queue, settings, () => this.scheduleDispatch(), (c) => this.consumers.delete(c));
    this.consumers.add(consumer);
    queue.consumers.push(consumer);
    this.scheduleDispatch();
    return consumer;
  }

  async broadcast(options: BroadcastOptions): Promise<BroadcastSubscription> {
    if (this.closed) throw new Error("memory bus: closed");
    const listener = new MemoryBroadcast(broadcastSettings(options), () => this.scheduleDispatch(), (b) => this.broadcasts.delete(b));
    this.broadcasts.add(listener);
    return listener;
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error("memory bus: closed");
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.consumers, ...this.broadcasts].map((c) => c.stop()));
  }

  /** Messages given up on for consumer `name`, oldest first (inspection and tests). */
  deadLetters(name: string): IncomingMessage[] {
    return [...(this.queues.get(name)?.dead ?? [])];
  }

  // Delivery always happens on a later turn of the event loop, never inside publish().
  private scheduleDispatch() {
    if (this.dispatchScheduled) return;
    this.dispatchScheduled = true;
    setImmediate(() => {
      this.dispatchScheduled = false;
      for (const queue of this.queues.values()) queue.dispatch();
      for (const listener of this.broadcasts) listener.dispatch();
    });
  }
}

interface Entry {
  message: OutgoingMessage;
  attempts: number;
}

class Queue {
  readonly bindings = new Set<string>();
  readonly ready: Entry[] = [];
  readonly dead: IncomingMessage[] = [];
  consumers: MemoryConsumer[] = [];
  private next = 0;

  constructor(readonly maxDeliveries: number) {}

  /** Hands ready messages to consumers with free prefetch slots, round-robin. */
  dispatch() {
    while (this.ready.length > 0) {
      const consumer = this.pickConsumer();
      if (!consumer) return;
      consumer.deliver(this.ready.shift()!);
    }
  }

  private pickConsumer(): MemoryConsumer | undefined {
    for (let i = 0; i < this.consumers.length; i++) {
      const consumer = this.consumers[(this.next + i) % this.consumers.length]!;
      if (consumer.hasCapacity()) {
        this.next = (this.next + i + 1) % this.consumers.length;
        return consumer;
      }
    }
    return undefined;
  }
}

class MemoryConsumer implements Consumer {
  private readonly inflight = new Set<Promise<void>>();
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly queue: Queue,
    private readonly settings: ConsumerSettings,
    private readonly wake: () => void,
    private readonly forget: (consumer: MemoryConsumer) => void,
  ) {}

  hasCapacity(): boolean {
    return this.stopping === undefined && this.inflight.size < this.settings.prefetch;
  }

  deliver(entry: Entry) {
    entry.attempts++;
    const incoming: IncomingMessage = { ...entry.message, body: entry.message.body.slice(), deliveryCount: entry.attempts };
    const run = this.run(entry, incoming).finally(() => {
      this.inflight.delete(run);
      this.wake(); // a prefetch slot is free again
    });
    this.inflight.add(run);
  }

  private async run(entry: Entry, incoming: IncomingMessage) {
    if (!isWellFormed(incoming)) {
      this.settings.onMalformed?.(incoming.routingKey);
      this.queue.dead.push(incoming);
      return;
    }
    try {
      await this.settings.handle(incoming);
    } catch {
      // Requeued at the back (as RabbitMQ 4 does) so one failing message cannot starve the rest.
      if (entry.attempts >= this.queue.maxDeliveries) this.queue.dead.push(incoming);
      else this.queue.ready.push(entry);
    }
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.queue.consumers = this.queue.consumers.filter((c) => c !== this);
      this.forget(this);
      await Promise.allSettled([...this.inflight]);
    })();
    return this.stopping;
  }
}

/**
 * A broadcast subscription: its own queue of what was published while it
 * listens, handed to the handler in order, at most `prefetch` at once; a
 * failed or malformed message is dropped (no redelivery, no dead letters),
 * like the RabbitMQ adapter's exclusive queue.
 */
class MemoryBroadcast implements BroadcastSubscription {
  private readonly ready: OutgoingMessage[] = [];
  private readonly inflight = new Set<Promise<void>>();
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly settings: BroadcastSettings,
    private readonly wake: () => void,
    private readonly forget: (listener: MemoryBroadcast) => void,
  ) {}

  get active(): boolean {
    return this.stopping === undefined;
  }

  offer(message: OutgoingMessage) {
    if (this.active && this.settings.routingKeys.some((pattern) => topicMatches(pattern, message.routingKey))) this.ready.push(message);
  }

  dispatch() {
    while (this.active && this.ready.length > 0 && this.inflight.size < this.settings.prefetch) {
      const message = this.ready.shift()!;
      const incoming: IncomingMessage = { ...message, body: message.body.slice(), deliveryCount: 1 };
      const run: Promise<void> = (async () => {
        if (isWellFormed(incoming)) await this.settings.handle(incoming);
      })()
        .catch(() => {}) // dropped: a broadcast copy is never redelivered
        .finally(() => {
          this.inflight.delete(run);
          this.wake();
        });
      this.inflight.add(run);
    }
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.forget(this);
      this.ready.length = 0;
      await Promise.allSettled([...this.inflight]);
    })();
    return this.stopping;
  }
}

/** AMQP topic matching: words separated by ".", "*" matches one word, "#" zero or more. */
export function topicMatches(pattern: string, routingKey: string): boolean {
  const match = (p: string[], k: string[]): boolean => {
    if (p.length === 0) return k.length === 0;
    const [head, ...rest] = p;
    if (head === "#") return match(rest, k) || (k.length > 0 && match(p, k.slice(1)));
    return k.length > 0 && (head === "*" || head === k[0]) && match(rest, k.slice(1));
  };
  return match(pattern.split("."), routingKey.split("."));
}
