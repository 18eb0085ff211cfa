import { Registry } from "prom-client";
import { EventService } from "../../gen/myevents/v1/event_service_pb.js";
import { startBackbone, type ServiceStartOptions } from "../runtime/backbone.js";
import { EnvReader, readRuntimeConfig, type RuntimeConfig } from "../runtime/config.js";
import { createLogger } from "../runtime/logger.js";
import { serve, startService, type RunningService } from "../runtime/server.js";
import { openStore } from "../runtime/store.js";
import { EVENTS_ROUTING_KEYS, eventsBookingHandler } from "./consumers.js";
import { MemoryEventRepository } from "./repository/memory.js";
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
export async function startEventsService(config: EventsConfig, options: ServiceStartOptions = {}): Promise<RunningService> {
  const log = options.logger ?? createLogger(config.runtime.logLevel, { service: "events" });
  const { repo, processed, dependencies } = await openStore<EventRepository>({
    mongodbUrl: config.mongodbUrl,
    database: config.database,
    logger: log,
    mongo: async (url, database) => (await import("./repository/mongo.js")).MongoEventRepository.open(url, database),
    memory: () => new MemoryEventRepository(),
  });
  const metrics = new Registry();
  const backbone = await startBackbone({
    name: `events${options.queueSuffix ?? ""}`,
    amqpUrl: config.amqpUrl,
    bus: options.bus,
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
    dependencies: [...dependencies, ...backbone.dependencies],
    close: async () => {
      await backbone.close();
      await repo.close();
    },
  });
}
