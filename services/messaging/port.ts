/**
 * The messaging port: how services publish domain events and consume them,
 * independent of the broker. Adapters: RabbitMQ (amqp.ts) and an in-process
 * bus (memory.ts) for the embedded default, which only works when every
 * service runs in one process.
 *
 * Topology (DESIGN.md): one durable topic exchange "myevents"; routing keys
 * "location.created", "event.created", "event.cancelled",
 * "booking.confirmed", "booking.cancelled". Each consuming service has one
 * durable quorum queue bound to the keys it needs, and a dead-letter queue
 * that receives a message after `maxDeliveries` failed attempts.
 *
 * Besides these work queues, a process may listen to the exchange with a
 * broadcast subscription: a queue of its own that lives only while it
 * listens (RabbitMQ: exclusive, auto-delete), so every subscriber sees every
 * matching message. For live fan-out (notifications), not for work that
 * must happen: nothing is kept while it is not listening.
 */

export const EXCHANGE = "myevents";

/** A message to publish: the protobuf binary of a domain event plus its metadata. */
export interface OutgoingMessage {
  routingKey: string;
  /** Unique id of the domain event; consumers drop duplicates by it. */
  messageId: string;
  /** Full protobuf message name, e.g. "myevents.v1.BookingConfirmed". */
  type: string;
  body: Uint8Array;
  /** When the change happened. */
  timestamp: Date;
  /** W3C trace context of the request that caused the event, when known. */
  traceparent?: string;
  /** W3C vendor trace state that goes with traceparent, when there is one. */
  tracestate?: string;
}

export interface IncomingMessage extends OutgoingMessage {
  /** 1 on the first delivery; more after the handler failed or the consumer died. */
  deliveryCount: number;
}

export interface Publisher {
  /**
   * Publishes persistently and resolves only when the broker has confirmed
   * every message (publisher confirms); rejects if any was not confirmed,
   * in which case the caller must retry (duplicates are harmless).
   */
  publish(messages: OutgoingMessage[]): Promise<void>;
}

export interface ConsumerOptions {
  /** Consuming service's name: the queue is "myevents.<name>", its DLQ "myevents.<name>.dlq". */
  name: string;
  routingKeys: string[];
  /** Unacknowledged messages in flight at once. */
  prefetch?: number;
  /** Attempts before a message goes to the dead-letter queue. */
  maxDeliveries?: number;
  /**
   * Handles one message. Resolving acknowledges it, so resolve only once the
   * effect is durable; throwing makes it redelivered (up to maxDeliveries).
   */
  handle(message: IncomingMessage): Promise<void>;
  /** Told when a message is dead-lettered at once, unhandled, because it lacks an id, type or timestamp. */
  onMalformed?(routingKey: string): void;
}

export interface Consumer {
  /** Stops receiving; in-flight handlers finish first. */
  stop(): Promise<void>;
}

export interface BroadcastOptions {
  /** Listener's name, for logs and the queue name ("myevents.<name>.<random>"). */
  name: string;
  routingKeys: string[];
  /** Unacknowledged messages in flight at once (broker-side backpressure). */
  prefetch?: number;
  /**
   * Handles one message; called in delivery order. A throw is logged and the
   * message dropped: a broadcast copy is never redelivered or dead-lettered.
   */
  handle(message: IncomingMessage): void | Promise<void>;
  /**
   * Called with false when the subscription stops receiving (its queue went
   * with the lost connection: what is published until it is back is missed
   * by this listener) and with true once it receives again.
   */
  onActiveChange?(active: boolean): void;
}

export interface BroadcastSubscription extends Consumer {
  /** True while messages arrive: queue declared, bound and consumed. */
  readonly active: boolean;
}

export interface MessageBus extends Publisher {
  /** What carries the messages: OpenTelemetry's `messaging.system` in traces. */
  readonly system: "rabbitmq" | "in_process";
  /** Declares the consumer's queues and starts delivering; survives reconnects. */
  consume(options: ConsumerOptions): Promise<Consumer>;
  /**
   * A copy of every matching message published from now on, in a queue of
   * this subscription's own that exists only while it listens (each
   * subscription, in any process, gets its own copy). Survives reconnects
   * by declaring a fresh queue; messages published meanwhile are missed
   * (see onActiveChange).
   */
  broadcast(options: BroadcastOptions): Promise<BroadcastSubscription>;
  /** Resolves while the broker connection is up; rejects otherwise (health checks). */
  ping(): Promise<void>;
  /** Resolves once connected (at once for an in-process bus); rejects after timeoutMs. */
  whenConnected?(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}
