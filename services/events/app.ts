import { Registry } from "prom-client";
import { EventService } from "../../gen/myevents/v1/event_service_pb.js";
import type { MessageBus } from "../messaging/port.js";
import { MemoryProcessedMessages, MongoProcessedMessages, type ProcessedMessages } from "../outbox/processed.js";
import { messageBus, startBackbone } from "../runtime/backbone.js";
import { EnvReader, readRuntimeConfig, redact, type RuntimeConfig } from "../runtime/config.js";
import { createLogger, type Logger } from "../runtime/logger.js";
import { serve, startService, type RunningService } from "../runtime/server.js";
import { EVENTS_ROUTING_KEYS, eventsBookingHandler } from "./consumers.js";
import { MemoryEventRepository } from "./repository/memory.js";
import { MongoEventRepository } from "./repository/mongo.js";
import type { EventRepository } from "./repository/repository.js";
import { eventService } from "./service.js";

export interface EventsConfig {
  runtime: RuntimeConfig;
  /** Unset: the embedded in-memory store. */
  mongodbUrl?: string;
  database: string;
  /** Unset: the in-process bus. */
  amqpUrl?: string;
}

export function readEventsConfig(env: EnvReader, portPrefix = ""): EventsConfig {
  return {
    runtime: readRuntimeConfig(env, { port: 50051, adminPort: 9101 }, portPrefix),
    mongodbUrl: env.optionalUrl("MONGODB_URL", ["mongodb:", "mongodb+srv:"]),
    database: env.string("EVENTS_DATABASE", "myevents_events"),
    amqpUrl: env.optionalUrl("AMQP_URL", ["amqp:", "amqps:"]),
  };
}

/** Wires the EventService process: store, messaging, handlers, runtime. */
export async function startEventsService(config: EventsConfig, options: { logger?: Logger; bus?: MessageBus; /** Queue name suffix, to isolate test runs on a shared broker. */ queueSuffix?: string } = {}): Promise<RunningService> {
  const log = options.logger ?? createLogger(config.runtime.logLevel, { service: "events" });
  let repo: EventRepository;
  let processed: ProcessedMessages;
  if (config.mongodbUrl) {
    const mongo = MongoEventRepository.open(config.mongodbUrl, config.database);
    // Indexes are created at start; if the database is down right now the
    // service still starts NOT_SERVING and health reports it.
    await mongo.ensureIndexes().catch((err: Error) =>
      log.warn("could not create indexes yet", { error: err.message, url: redact(config.mongodbUrl!) }),
    );
    repo = mongo;
    processed = new MongoProcessedMessages(mongo.database);
  } else {
    repo = new MemoryEventRepository();
    processed = new MemoryProcessedMessages();
  }
  log.info("store", { kind: config.mongodbUrl ? "mongodb" : "memory", database: config.mongodbUrl ? config.database : undefined });

  const metrics = new Registry();
  const { bus, shared } = options.bus ? { bus: options.bus, shared: true } : messageBus(config.amqpUrl, log);
  const backbone = await startBackbone({
    name: `events${options.queueSuffix ?? ""}`,
    bus,
    sharedBus: shared,
    outbox: repo.outboxSources(),
    consume: { routingKeys: EVENTS_ROUTING_KEYS, handle: eventsBookingHandler(repo), processed },
    logger: log,
    metrics,
  });

  return startService({
    name: "events",
    config: config.runtime,
    logger: log,
    metrics,
    services: [serve(EventService, eventService(repo, { onOutbox: () => backbone.relay.kick() }))],
    dependencies: [...(config.mongodbUrl ? [{ name: "mongodb", check: () => repo.ping() }] : []), ...backbone.dependencies],
    close: async () => {
      await backbone.close();
      await repo.close();
    },
  });
}
