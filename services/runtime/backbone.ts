import type { Registry } from "prom-client";
import { MemoryMessageBus } from "../messaging/memory.js";
import { observedBus } from "../messaging/observed.js";
import type { Consumer, IncomingMessage, MessageBus } from "../messaging/port.js";
import type { OutboxSource } from "../outbox/outbox.js";
import { idempotent, type ProcessedMessages } from "../outbox/processed.js";
import { OutboxRelay } from "../outbox/relay.js";
import { retryWhileUnavailable } from "../messaging/transient.js";
import { redact } from "./config.js";
import { isUnavailable } from "./errors.js";
import type { Dependency } from "./health.js";
import type { Logger } from "./logger.js";

/** The in-process bus of `npm start`, shared by every service in that process. */
let sharedMemoryBus: MemoryMessageBus | undefined;

export interface OpenedBus {
  bus: MessageBus;
  /** The broker for health and readiness (none for a shared or in-process bus). */
  dependencies: Dependency[];
  /** Closes the bus if this service owns it. */
  close(): Promise<void>;
}

/**
 * The bus given by the caller (tests; not closed here), else RabbitMQ when
 * AMQP_URL is set, else the in-process bus (which only connects services
 * running in the same process). amqplib is imported only when used.
 */
export async function openMessageBus(amqpUrl: string | undefined, logger: Logger, given?: MessageBus): Promise<OpenedBus> {
  const shared = (bus: MessageBus): OpenedBus => ({ bus, dependencies: [], close: async () => {} });
  if (given) return shared(given);
  if (amqpUrl) {
    logger.info("message bus", { kind: "rabbitmq", url: redact(amqpUrl) });
    const { AmqpMessageBus } = await import("../messaging/amqp.js");
    const bus = new AmqpMessageBus(amqpUrl, logger);
    return { bus, dependencies: [{ name: "rabbitmq", check: () => bus.ping() }], close: () => bus.close() };
  }
  logger.info("message bus", { kind: "in-process", reach: "the services of this process only (AMQP_URL unset)" });
  sharedMemoryBus ??= new MemoryMessageBus();
  return shared(sharedMemoryBus);
}

export interface BackboneOptions {
  /** Consuming service's name (its queue is "myevents.<name>"). */
  name: string;
  /** RabbitMQ; unset: the process's in-process bus. */
  amqpUrl?: string;
  /** A bus given by the caller (tests); it is not closed here. */
  bus?: MessageBus;
  outbox: OutboxSource[];
  consume?: { routingKeys: string[]; handle(message: IncomingMessage): Promise<void>; processed: ProcessedMessages };
  logger: Logger;
  metrics: Registry;
}

/** How tests and the all-in-one process start a service beside others. */
export interface ServiceStartOptions {
  logger?: Logger;
  /** A bus shared with other services (tests); unset: AMQP_URL or the in-process bus. */
  bus?: MessageBus;
  /** Queue name suffix, to isolate test runs on a shared broker. */
  queueSuffix?: string;
}

/** A service's messaging: the outbox relay, its consumer, and their health and shutdown. */
export interface Backbone {
  relay: OutboxRelay;
  dependencies: Dependency[];
  /** Stops consuming and publishing (in that order), then closes the bus if owned. */
  close(): Promise<void>;
}

export async function startBackbone(opts: BackboneOptions): Promise<Backbone> {
  const opened = await openMessageBus(opts.amqpUrl, opts.logger, opts.bus);
  // Traces and metrics of every message this service publishes or consumes.
  const bus = observedBus(opened.bus, opts.metrics, opts.logger);
  const relay = new OutboxRelay(opts.outbox, bus, opts.logger, { registry: opts.metrics });
  // Give the broker a moment at start, so the consumer's queue is declared
  // and bound before the service takes calls; if it is down, start anyway
  // (NOT_SERVING) and let the bus connect and start the consumer later.
  await bus.whenConnected?.(3_000).catch(() => opts.logger.warn("broker not reachable yet; starting without it"));
  let consumer: Consumer | undefined;
  let stopping = false;
  if (opts.consume) {
    const { routingKeys, handle, processed } = opts.consume;
    // A database outage is not the message's fault: wait for the database
    // rather than burn the message's deliveries and dead-letter it.
    const patient = retryWhileUnavailable(idempotent(opts.name, processed, handle), {
      isTransient: isUnavailable,
      stopping: () => stopping,
      onRetry: (err, attempt, delayMs) =>
        opts.logger.warn("consumer: a dependency is unavailable; holding the message and retrying", {
          consumer: opts.name,
          attempt,
          delay_ms: delayMs,
          error: (err as Error).message,
        }),
    });
    consumer = await bus.consume({ name: opts.name, routingKeys, handle: patient });
  }
  relay.start();
  return {
    relay,
    dependencies: opened.dependencies,
    async close() {
      stopping = true;
      await consumer?.stop();
      await relay.stop();
      await opened.close();
    },
  };
}
