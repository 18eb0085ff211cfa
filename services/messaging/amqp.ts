import { randomBytes } from "node:crypto";
import { connect } from "amqplib";
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage, Options } from "amqplib";
import { context } from "@opentelemetry/api";
import type { Logger } from "../runtime/logger.js";
import { contextFromTraceHeaders } from "../runtime/tracing.js";
import { EXCHANGE } from "./port.js";
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
 * RabbitMQ adapter (amqplib). Topology, declared on every (re)connect:
 *
 *   exchange "myevents"      topic, durable: every domain event
 *   exchange "myevents.dlx"  direct, durable: dead letters, routed by consumer name
 *   queue "myevents.<N>"     quorum, bound to N's routing keys, see queueArguments()
 *   queue "myevents.<N>.dlq" quorum, bound to "myevents.dlx" with key N
 *   queue "myevents.<B>.<random>"  a broadcast subscription B: classic,
 *                            exclusive, auto-delete (see broadcastQueueArguments)
 *
 * One connection; a confirm channel for publishing and one channel per
 * consumer (its own prefetch, and a channel error only stops that consumer).
 */

export const DEAD_LETTER_EXCHANGE = `${EXCHANGE}.dlx`;
export const queueName = (consumer: string) => `${EXCHANGE}.${consumer}`;
export const deadLetterQueueName = (consumer: string) => `${EXCHANGE}.${consumer}.dlq`;

/** Arguments of a consumer's queue. RabbitMQ fixes them at declaration: changing one needs a new queue. */
export function queueArguments(consumer: string, maxDeliveries: number): Record<string, unknown> {
  return {
    // Replicated, and counts deliveries per message, which the delivery limit needs.
    "x-queue-type": "quorum",
    // The limit counts failed deliveries (basic.reject with requeue, or a lost channel):
    // with limit L a message is delivered L + 1 times, then dead-lettered (verified
    // against RabbitMQ 3.10 for L = 0, 1, 2).
    "x-delivery-limit": maxDeliveries - 1,
    "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
    // Only this consumer's DLQ is bound with its name, so its dead letters land there alone.
    "x-dead-letter-routing-key": consumer,
    // Keep a dead letter in this queue until the DLQ has confirmed it; the default
    // (at-most-once) drops it if that fails. RabbitMQ requires reject-publish overflow
    // for this; no length limit is set, so publishes are never rejected.
    "x-dead-letter-strategy": "at-least-once",
    "x-overflow": "reject-publish",
  };
}

/**
 * Arguments of a broadcast subscription's queue (declared exclusive and
 * auto-delete: it goes with the connection). Classic, since quorum queues
 * cannot be exclusive. Bounded: if the process stops taking messages, the
 * oldest are dropped (the default drop-head overflow; never reject-publish,
 * which would make the broker refuse the publishers' messages).
 */
export const BROADCAST_MAX_LENGTH = 10_000;
export function broadcastQueueArguments(): Record<string, unknown> {
  return { "x-queue-type": "classic", "x-max-length": BROADCAST_MAX_LENGTH };
}

export interface AmqpOptions {
  /** First reconnect delay; it doubles after each failed attempt up to maxBackoffMs. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** AMQP heartbeat, unless the URL sets one: how soon a silently dead connection is noticed. */
  heartbeatSeconds?: number;
  /** Bound on the TCP connect plus AMQP handshake. */
  connectTimeoutMs?: number;
  /** How long publish() waits for the broker (confirms, flow control) before rejecting. */
  publishTimeoutMs?: number;
}

export type BusLogger = Pick<Logger, "info" | "warn" | "error">;

/** The URL with its password masked, for logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "<unparsable AMQP URL>";
  }
}

/**
 * Exponential backoff with "equal jitter" (half fixed, half random), so that
 * many clients do not reconnect in lockstep after a broker restart.
 */
export function backoffMs(attempt: number, minMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** attempt);
  return ceiling / 2 + (Math.random() * ceiling) / 2;
}

export class AmqpMessageBus implements MessageBus {
  readonly system = "rabbitmq";
  private readonly url: string;
  private readonly safeUrl: string;
  private readonly opts: Required<AmqpOptions>;
  private model: ChannelModel | undefined;
  private publisher: ConfirmChannel | undefined;
  private readonly consumers = new Set<ChannelConsumer>();
  private connectedWaiters: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  private closing: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readonly loop: Promise<void>;

  /** Starts connecting at once and keeps reconnecting until close(); the broker may be down at start. */
  constructor(
    url: string,
    private readonly log: BusLogger,
    options: AmqpOptions = {},
  ) {
    this.opts = {
      minBackoffMs: 100,
      maxBackoffMs: 5000,
      heartbeatSeconds: 10,
      connectTimeoutMs: 5000,
      publishTimeoutMs: 10_000,
      ...options,
    };
    const parsed = new URL(url);
    if (!parsed.searchParams.has("heartbeat")) parsed.searchParams.set("heartbeat", String(this.opts.heartbeatSeconds));
    this.url = parsed.toString();
    this.safeUrl = redactUrl(url);
    this.loop = this.run();
  }

  /** Resolves once connected (at once if connected now); rejects after timeoutMs or on close(). */
  whenConnected(timeoutMs?: number): Promise<void> {
    if (this.publisher) return Promise.resolve();
    if (this.closing) return Promise.reject(new Error("amqp: bus closed"));
    const waiting = new Promise<void>((resolve, reject) => this.connectedWaiters.push({ resolve, reject }));
    return timeoutMs === undefined ? waiting : withTimeout(waiting, timeoutMs, "connecting to RabbitMQ");
  }

  async ping(): Promise<void> {
    if (!this.publisher) throw new Error("amqp: not connected to RabbitMQ");
  }

  async publish(messages: OutgoingMessage[]): Promise<void> {
    const channel = this.publisher;
    // No buffering while disconnected: the caller (the outbox relay) keeps the messages and retries.
    if (!channel) throw new Error("amqp: not connected to RabbitMQ");
    const confirms: Promise<void>[] = [];
    for (const m of messages) {
      let settle!: (err: unknown) => void;
      const confirmed = new Promise<void>((resolve, reject) => {
        settle = (err) => (err ? reject(new Error(`amqp: broker did not confirm message ${m.messageId}`, { cause: err })) : resolve());
      });
      confirmed.catch(() => {}); // awaited below; no unhandled rejection if a later publish throws
      confirms.push(confirmed);
      // Throws at once if the channel has closed. Returns false when the socket buffer
      // is full: wait for 'drain' before writing more (backpressure).
      if (!channel.publish(EXCHANGE, m.routingKey, toBuffer(m.body), publishOptions(m), settle)) {
        await withTimeout(drained(channel), this.opts.publishTimeoutMs, "waiting for the channel to drain");
      }
    }
    await withTimeout(Promise.all(confirms), this.opts.publishTimeoutMs, "waiting for publisher confirms");
  }

  async consume(options: ConsumerOptions): Promise<Consumer> {
    if (this.closing) throw new Error("amqp: bus closed");
    return this.startConsumer(new WorkConsumer(consumerSettings(options), this.log, this.consumerHost()));
  }

  async broadcast(options: BroadcastOptions): Promise<BroadcastSubscription> {
    if (this.closing) throw new Error("amqp: bus closed");
    return this.startConsumer(new BroadcastConsumer(broadcastSettings(options), this.log, this.consumerHost()));
  }

  private consumerHost(): ConsumerHost {
    return {
      model: () => this.model,
      backoff: (attempt) => backoffMs(attempt, this.opts.minBackoffMs, this.opts.maxBackoffMs),
      forget: (c) => this.consumers.delete(c),
    };
  }

  /** Starts now if connected (a failure on a live connection is the caller's error), else on connect. */
  private async startConsumer<C extends ChannelConsumer>(consumer: C): Promise<C> {
    this.consumers.add(consumer);
    const model = this.model;
    if (model) {
      try {
        await consumer.ensureStarted(model);
      } catch (err) {
        // The connection is still up, so this is a real error (e.g. a queue argument
        // mismatch): report it. After a connection loss it starts on reconnect instead.
        if (this.model === model) {
          this.consumers.delete(consumer);
          throw err;
        }
      }
    } else {
      this.log.warn("amqp: not connected; consumer starts on connect", { consumer: consumer.name });
    }
    return consumer;
  }

  /** Stops consumers (in-flight handlers finish), closes the connection and stops reconnecting. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.wake?.();
      for (const waiter of this.connectedWaiters.splice(0)) waiter.reject(new Error("amqp: bus closed"));
      await Promise.all([...this.consumers].map((c) => c.stop()));
      await this.model?.close().catch(() => {});
      await this.loop;
    })();
    return this.closing;
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.closing) {
      try {
        const { lost } = await this.connectOnce();
        attempt = 0;
        await lost;
      } catch (err) {
        if (!this.closing) this.log.warn("amqp: cannot connect to RabbitMQ", { url: this.safeUrl, attempt, error: err });
      }
      if (this.closing) return;
      const delay = backoffMs(attempt++, this.opts.minBackoffMs, this.opts.maxBackoffMs);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** Connects, declares the exchanges, opens the publisher channel and (re)starts every consumer. */
  private async connectOnce(): Promise<{ lost: Promise<void> }> {
    const model = await connect(this.url, { timeout: this.opts.connectTimeoutMs });
    // 'error' is always followed by 'close'; listening to it keeps it from crashing the process.
    model.on("error", (err: Error) => this.log.warn("amqp: connection error", { error: err.message }));
    model.on("blocked", (reason: string) => this.log.warn("amqp: broker blocks publishing", { reason }));
    model.on("unblocked", () => this.log.info("amqp: broker unblocked publishing"));
    const lost = new Promise<void>((resolve) =>
      model.once("close", (err?: Error) => {
        if (this.model === model) {
          this.model = undefined;
          this.publisher = undefined;
          if (!this.closing) this.log.warn("amqp: connection lost; reconnecting", { url: this.safeUrl, error: err?.message });
        }
        resolve();
      }),
    );
    try {
      const publisher = await model.createConfirmChannel();
      publisher.on("error", (err: Error) => this.log.warn("amqp: publisher channel error", { error: err.message }));
      // Unexpected loss of the publisher channel (a protocol error): recycle the whole connection,
      // which redeclares the topology.
      publisher.once("close", () => {
        if (this.publisher !== publisher || this.closing) return;
        this.publisher = undefined;
        this.log.warn("amqp: publisher channel closed; reconnecting");
        model.close().catch(() => {});
      });
      await declareExchanges(publisher);
      if (this.closing) throw new Error("amqp: bus closed");
      this.model = model;
      this.publisher = publisher;
    } catch (err) {
      await model.close().catch(() => {});
      throw err;
    }
    this.log.info("amqp: connected to RabbitMQ", { url: this.safeUrl });
    await Promise.all(
      [...this.consumers].map((c) =>
        c.ensureStarted(model).catch((err: unknown) => {
          this.log.error("amqp: cannot start consumer; retrying", { consumer: c.name, error: err });
          c.scheduleRestart();
        }),
      ),
    );
    for (const waiter of this.connectedWaiters.splice(0)) waiter.resolve();
    return { lost };
  }
}

interface ConsumerHost {
  model(): ChannelModel | undefined;
  backoff(attempt: number): number;
  forget(consumer: ChannelConsumer): void;
}

/**
 * What both kinds of consumer share: a channel of its own (own prefetch; a
 * channel error stops only this consumer), restarts after channel or
 * connection loss, and a stop that lets in-flight handlers finish.
 */
abstract class ChannelConsumer implements Consumer {
  private channel: Channel | undefined;
  private consumerTag = "";
  private starting: Promise<void> | undefined;
  protected stopping: Promise<void> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private restartAttempt = 0;
  private readonly inflight = new Set<Promise<void>>();

  constructor(
    protected readonly settings: { name: string; prefetch: number },
    protected readonly log: BusLogger,
    private readonly host: ConsumerHost,
  ) {}

  get name(): string {
    return this.settings.name;
  }

  /** True while consuming. */
  get active(): boolean {
    return this.channel !== undefined;
  }

  /** Declares what this consumer reads from on `channel`; returns the queue's name. */
  protected abstract declare(channel: Channel): Promise<string>;
  /** Handles one delivery and settles it (ack or reject) on `channel`. */
  protected abstract process(channel: Channel, msg: ConsumeMessage): Promise<void>;
  /** Told when consuming starts (true) or stops (false). */
  protected activeChanged(_active: boolean): void {}

  /** Starts consuming on `model` unless already running, starting or stopped. */
  ensureStarted(model: ChannelModel): Promise<void> {
    if (this.stopping || this.channel) return Promise.resolve();
    this.starting ??= this.start(model).finally(() => (this.starting = undefined));
    return this.starting;
  }

  /** Retries on the current connection later; without one, the bus restarts it on reconnect. */
  scheduleRestart() {
    if (this.stopping || this.restartTimer) return;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      const model = this.host.model();
      if (!model || this.stopping) return;
      this.ensureStarted(model).catch((err: unknown) => {
        this.log.error("amqp: cannot restart consumer; retrying", { consumer: this.name, error: err });
        this.scheduleRestart();
      });
    }, this.host.backoff(this.restartAttempt++));
  }

  private async start(model: ChannelModel) {
    const { name, prefetch } = this.settings;
    const channel = await model.createChannel();
    channel.on("error", (err: Error) => this.log.warn("amqp: consumer channel error", { consumer: name, error: err.message }));
    channel.once("close", () => {
      if (this.channel !== channel) return;
      this.channel = undefined;
      this.activeChanged(false);
      // Unacked messages go back to the queue. If the connection is gone, the bus
      // restarts this consumer on reconnect; otherwise (e.g. the queue was deleted) retry here.
      if (!this.stopping) this.scheduleRestart();
    });
    try {
      await declareExchanges(channel);
      const queue = await this.declare(channel);
      // Per-consumer limit on unacked messages = the number of handlers running at once.
      await channel.prefetch(prefetch);
      const { consumerTag } = await channel.consume(queue, (msg) => this.onDelivery(channel, msg), { noAck: false });
      this.channel = channel;
      this.consumerTag = consumerTag;
      this.restartAttempt = 0;
    } catch (err) {
      await channel.close().catch(() => {});
      throw err;
    }
    this.activeChanged(true);
  }

  private onDelivery(channel: Channel, msg: ConsumeMessage | null) {
    if (msg === null) {
      // The broker cancelled us (queue deleted): close the channel; its close handler restarts us.
      this.log.warn("amqp: consumer cancelled by the broker", { consumer: this.name });
      channel.close().catch(() => {});
      return;
    }
    const handled: Promise<void> = this.process(channel, msg).finally(() => this.inflight.delete(handled));
    this.inflight.add(handled);
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      clearTimeout(this.restartTimer);
      this.host.forget(this);
      await this.starting?.catch(() => {});
      const channel = this.channel;
      // Cancel first so nothing new arrives, let in-flight handlers finish and ack, then close.
      if (channel) await channel.cancel(this.consumerTag).catch(() => {});
      await Promise.allSettled([...this.inflight]);
      this.channel = undefined;
      await channel?.close().catch(() => {});
    })();
    return this.stopping;
  }
}

/** A consumer of a durable work queue, with retries and a dead-letter queue (queueArguments). */
class WorkConsumer extends ChannelConsumer {
  declare protected readonly settings: ConsumerSettings;

  constructor(settings: ConsumerSettings, log: BusLogger, host: ConsumerHost) {
    super(settings, log, host);
  }

  protected async declare(channel: Channel): Promise<string> {
    const { name, maxDeliveries, routingKeys } = this.settings;
    const dlq = deadLetterQueueName(name);
    await channel.assertQueue(dlq, { durable: true, arguments: { "x-queue-type": "quorum" } });
    await channel.bindQueue(dlq, DEAD_LETTER_EXCHANGE, name);
    const queue = queueName(name);
    await channel.assertQueue(queue, { durable: true, arguments: queueArguments(name, maxDeliveries) });
    for (const key of routingKeys) await channel.bindQueue(queue, EXCHANGE, key);
    return queue;
  }

  protected async process(channel: Channel, msg: ConsumeMessage) {
    const message = decode(msg);
    // In the message's trace, so this consumer's log lines carry its trace id too.
    if (message) return context.with(contextFromTraceHeaders(message), () => this.handleDecoded(channel, msg, message));
    this.log.warn("amqp: malformed message (no messageId, type or timestamp); dead-lettering it", {
      consumer: this.name,
      routingKey: msg.fields.routingKey,
    });
    this.settings.onMalformed?.(msg.fields.routingKey);
    settle(() => channel.reject(msg, false)); // requeue=false: dead-lettered at once
  }

  private async handleDecoded(channel: Channel, msg: ConsumeMessage, message: IncomingMessage) {
    try {
      await this.settings.handle(message);
    } catch (err) {
      const final = message.deliveryCount >= this.settings.maxDeliveries;
      this.log.warn(final ? "amqp: handler failed; giving up, dead-lettering" : "amqp: handler failed; will retry", {
        consumer: this.name,
        messageId: message.messageId,
        type: message.type,
        deliveryCount: message.deliveryCount,
        error: err,
      });
      // Requeue as a failure: the quorum queue counts it and dead-letters past the limit.
      // basic.reject, not basic.nack: since RabbitMQ 4.3 only reject (and a lost channel)
      // increments the delivery count; a nack'ed message would be retried forever.
      settle(() => channel.reject(msg, true));
      return;
    }
    // Ack only now: the handler resolves once its effect is durable, so a crash before
    // this point means redelivery (at least once; consumers deduplicate by messageId).
    settle(() => channel.ack(msg));
  }
}

/**
 * A broadcast subscription: on every (re)start a fresh exclusive,
 * auto-delete queue ("myevents.<name>.<random>"; a new name, because the
 * broker may not yet have noticed that the old connection is gone, and
 * would refuse to hand its exclusive queue to a new one).
 */
class BroadcastConsumer extends ChannelConsumer implements BroadcastSubscription {
  declare protected readonly settings: BroadcastSettings;
  private queueName: string | undefined;

  constructor(settings: BroadcastSettings, log: BusLogger, host: ConsumerHost) {
    super(settings, log, host);
  }

  /** The current queue's name (inspection and tests); undefined before the first start. */
  get queue(): string | undefined {
    return this.queueName;
  }

  protected override activeChanged(active: boolean): void {
    if (active || !this.stopping) this.settings.onActiveChange?.(active);
  }

  protected async declare(channel: Channel): Promise<string> {
    const queue = `${queueName(this.settings.name)}.${randomBytes(6).toString("hex")}`;
    await channel.assertQueue(queue, { exclusive: true, autoDelete: true, durable: false, arguments: broadcastQueueArguments() });
    for (const key of this.settings.routingKeys) await channel.bindQueue(queue, EXCHANGE, key);
    this.queueName = queue;
    return queue;
  }

  protected async process(channel: Channel, msg: ConsumeMessage) {
    const message = decode(msg);
    try {
      // Called here, synchronously from the delivery callback: in delivery order.
      if (message) await this.settings.handle(message);
      else this.log.warn("amqp: malformed broadcast message dropped", { consumer: this.name, routingKey: msg.fields.routingKey });
    } catch (err) {
      this.log.warn("amqp: broadcast handler failed; message dropped", { consumer: this.name, messageId: message?.messageId, error: err });
    }
    // Acked either way: a copy for live listeners is not worth a redelivery loop.
    settle(() => channel.ack(msg));
  }
}

/** The exchanges every publisher and consumer relies on (idempotent). */
export async function declareExchanges(channel: Channel) {
  await channel.assertExchange(EXCHANGE, "topic", { durable: true });
  await channel.assertExchange(DEAD_LETTER_EXCHANGE, "direct", { durable: true });
}

function publishOptions(m: OutgoingMessage): Options.Publish {
  return {
    persistent: true,
    messageId: m.messageId,
    type: m.type,
    contentType: "application/protobuf",
    timestamp: Math.floor(m.timestamp.getTime() / 1000), // AMQP timestamps are in seconds
    ...(m.traceparent === undefined ? {} : { headers: traceHeaders(m) }),
  };
}

function decode(msg: ConsumeMessage): IncomingMessage | undefined {
  const { messageId, type, timestamp, headers } = msg.properties;
  if (!isWellFormed({ messageId, type }) || typeof timestamp !== "number") return undefined;
  // Quorum queues count earlier deliveries of this message in x-delivery-count (absent the first time).
  const previous: unknown = headers?.["x-delivery-count"];
  const traceparent = headerString(headers?.["traceparent"]);
  const tracestate = headerString(headers?.["tracestate"]);
  return {
    routingKey: msg.fields.routingKey,
    messageId: messageId as string,
    type: type as string,
    body: new Uint8Array(msg.content.buffer, msg.content.byteOffset, msg.content.byteLength),
    timestamp: new Date(timestamp * 1000),
    ...(traceparent === undefined ? {} : { traceparent }),
    ...(tracestate === undefined ? {} : { tracestate }),
    deliveryCount: typeof previous === "number" ? previous + 1 : msg.fields.redelivered ? 2 : 1,
  };
}

function traceHeaders(m: OutgoingMessage): Record<string, string> {
  return m.tracestate === undefined ? { traceparent: m.traceparent! } : { traceparent: m.traceparent!, tracestate: m.tracestate };
}

function headerString(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (Buffer.isBuffer(value)) return value.toString("utf8");
  return undefined;
}

function toBuffer(body: Uint8Array): Buffer {
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

/** ack/nack on a channel that has closed throws; the broker then redelivers, which is what we want. */
function settle(action: () => void) {
  try {
    action();
  } catch {
    // channel gone
  }
}

function drained(channel: Channel): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      channel.off("drain", onDrain);
      channel.off("close", onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new Error("amqp: channel closed"));
    channel.once("drain", onDrain);
    channel.once("close", onClose);
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`amqp: timed out ${what} after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
