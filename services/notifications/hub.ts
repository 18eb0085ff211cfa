import { Code, ConnectError } from "@connectrpc/connect";
import { Counter, Gauge, type Registry } from "prom-client";
import type { SubscribeResponse } from "../../gen/myevents/v1/notification_service_pb.js";
import type { Logger } from "../runtime/logger.js";
import { heartbeat, type Notification } from "./notifications.js";

export interface HubOptions {
  /** A stream that sent nothing for this long gets a heartbeat. */
  heartbeatIntervalMs: number;
  /** Notifications a subscriber may have waiting; one more ends its stream (ResourceExhausted). */
  bufferSize: number;
  metrics: Registry;
  logger: Logger;
}

/** How many recent message ids are remembered to drop duplicates (the outbox publishes at least once). */
const RECENT_IDS = 4096;

/**
 * Fans notifications out to the open Subscribe streams of this instance.
 * Each subscriber has its own bounded buffer, so a slow one never holds up
 * the others or the broker consumer: when its buffer is full its stream
 * ends with ResourceExhausted (the client reconnects) and what it had not
 * read is dropped and counted.
 */
export class NotificationHub {
  private readonly subscribers = new Set<Subscriber>();
  private readonly recent = new RecentIds(RECENT_IDS);
  /** Why new subscriptions are refused right now (undefined: they are accepted). */
  private refusal: ConnectError | undefined = new ConnectError("not connected to the message broker yet; try again", Code.Unavailable);
  private closed = false;
  private readonly delivered: Counter<"change">;
  private readonly dropped: Counter;
  private readonly received: Counter<"routing_key">;

  constructor(private readonly options: HubOptions) {
    const { metrics } = options;
    const subscribers = this.subscribers;
    new Gauge({
      name: "notification_streams_open",
      help: "Subscribe streams open on this instance",
      registers: [metrics],
      collect() {
        this.set(subscribers.size);
      },
    });
    this.delivered = new Counter({
      name: "notifications_delivered_total",
      help: "Notifications handed to a subscriber's stream (heartbeats not counted)",
      labelNames: ["change"],
      registers: [metrics],
    });
    this.dropped = new Counter({
      name: "notifications_dropped_total",
      help: "Notifications a subscriber never got because its buffer overflowed (its stream ended with ResourceExhausted)",
      registers: [metrics],
    });
    this.received = new Counter({
      name: "notifications_received_total",
      help: "Domain events received from the message bus, by routing key",
      labelNames: ["routing_key"],
      registers: [metrics],
    });
  }

  get openStreams(): number {
    return this.subscribers.size;
  }

  /** Counts a domain event taken from the bus (whether or not it made a notification). */
  countReceived(routingKey: string): void {
    this.received.inc({ routing_key: routingKey });
  }

  /** Sends a notification to every subscriber whose filter matches; a duplicate message id is dropped. */
  publish({ eventId, response }: Notification): void {
    if (this.closed || this.recent.seen(response.messageId)) return;
    for (const subscriber of this.subscribers) if (subscriber.wants(eventId)) subscriber.offer(response);
  }

  /**
   * Whether the broker feeds this hub. While it does not, open streams end
   * with Unavailable (notifications may be missed: the client should
   * refresh what it shows and subscribe again) and new ones are refused.
   */
  setAvailable(available: boolean): void {
    if (this.closed) return;
    if (available) {
      this.refusal = undefined;
      return;
    }
    const error = new ConnectError(
      "lost the connection to the message broker: notifications may have been missed; refresh and subscribe again",
      Code.Unavailable,
    );
    const wasAvailable = this.refusal === undefined;
    this.refusal = error;
    if (wasAvailable) {
      if (this.subscribers.size > 0) this.options.logger.warn("broker connection lost; ending open streams", { streams: this.subscribers.size });
      for (const subscriber of this.subscribers) subscriber.end(error);
    }
  }

  /** Ends every stream (after what it has buffered) with Unavailable and refuses new ones: shutdown. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.refusal = new ConnectError("the notification service is shutting down; subscribe again", Code.Unavailable);
    for (const subscriber of this.subscribers) subscriber.end(this.refusal);
  }

  /**
   * A stream of notifications for these events (all when empty), starting
   * with a heartbeat once the subscription is registered, so a client that
   * has read it knows that every later change reaches it. Ends when the
   * caller leaves (signal), or with an error: buffer overflow, broker lost,
   * shutdown.
   */
  subscribe(eventIds: readonly string[], signal: AbortSignal): AsyncGenerator<SubscribeResponse> {
    if (this.refusal) throw this.refusal;
    const subscriber = new Subscriber(eventIds.length > 0 ? new Set(eventIds) : undefined, this.options, {
      overflowed: (lost) => {
        this.dropped.inc(lost);
        this.subscribers.delete(subscriber);
        this.options.logger.info("subscriber too slow; stream ended", { buffer: this.options.bufferSize, dropped: lost });
      },
      delivered: (change) => this.delivered.inc({ change }),
      gone: () => this.subscribers.delete(subscriber),
    });
    this.subscribers.add(subscriber);
    return subscriber.stream(signal);
  }
}

interface SubscriberEvents {
  overflowed(lost: number): void;
  delivered(change: string): void;
  gone(): void;
}

/** One Subscribe stream: its filter, its bounded buffer, its heartbeat. */
class Subscriber {
  private readonly buffer: SubscribeResponse[] = [];
  private wake: (() => void) | undefined;
  private ending: { error: ConnectError } | undefined;
  private readonly heartbeatTimer: NodeJS.Timeout;

  constructor(
    private readonly eventIds: ReadonlySet<string> | undefined,
    private readonly options: HubOptions,
    private readonly events: SubscriberEvents,
  ) {
    // A heartbeat after every quiet interval; each enqueued message restarts the clock.
    this.heartbeatTimer = setTimeout(() => this.beat(), options.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
    this.buffer.push(heartbeat());
  }

  wants(eventId: string): boolean {
    return this.eventIds === undefined || this.eventIds.has(eventId);
  }

  offer(response: SubscribeResponse): void {
    if (this.ending) return;
    if (this.buffer.length >= this.options.bufferSize) {
      const lost = this.buffer.filter((r) => r.change.case !== "heartbeat").length + 1;
      this.buffer.length = 0;
      this.end(new ConnectError(
        `subscriber too slow: more than ${this.options.bufferSize} notifications waiting; subscribe again`,
        Code.ResourceExhausted,
      ));
      this.events.overflowed(lost);
      return;
    }
    this.push(response);
  }

  /** Ends the stream with `error` once the buffer has been read. */
  end(error: ConnectError): void {
    if (this.ending) return;
    this.ending = { error };
    clearTimeout(this.heartbeatTimer);
    this.wake?.();
  }

  async *stream(signal: AbortSignal): AsyncGenerator<SubscribeResponse> {
    const left = () => this.wake?.();
    signal.addEventListener("abort", left);
    try {
      while (!signal.aborted) {
        const next = this.buffer.shift();
        if (next) {
          if (next.change.case !== "heartbeat") this.events.delivered(next.change.case ?? "unknown");
          yield next;
          continue;
        }
        if (this.ending) throw this.ending.error;
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
      }
    } finally {
      signal.removeEventListener("abort", left);
      clearTimeout(this.heartbeatTimer);
      this.ending ??= { error: new ConnectError("stream closed", Code.Canceled) };
      this.events.gone();
    }
  }

  private push(response: SubscribeResponse): void {
    this.buffer.push(response);
    this.heartbeatTimer.refresh();
    this.wake?.();
  }

  private beat(): void {
    if (this.ending) return;
    // Only when idle: a stream with messages waiting does not need one.
    if (this.buffer.length === 0) this.push(heartbeat());
    else this.heartbeatTimer.refresh();
  }
}

/** The last `capacity` message ids, to recognise duplicates. */
class RecentIds {
  private readonly ids = new Set<string>();
  private readonly order: string[] = [];
  private next = 0;

  constructor(private readonly capacity: number) {}

  /** True if `id` was seen before; remembers it otherwise. */
  seen(id: string): boolean {
    if (this.ids.has(id)) return true;
    const evicted = this.order[this.next];
    if (evicted !== undefined) this.ids.delete(evicted);
    this.order[this.next] = id;
    this.next = (this.next + 1) % this.capacity;
    this.ids.add(id);
    return false;
  }
}
