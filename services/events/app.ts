import { EventService } from "../../gen/myevents/v1/event_service_pb.js";
import { EnvReader, readRuntimeConfig, redact, type RuntimeConfig } from "../runtime/config.js";
import { createLogger, type Logger } from "../runtime/logger.js";
import { serve, startService, type RunningService } from "../runtime/server.js";
import { MemoryEventRepository } from "./repository/memory.js";
import { MongoEventRepository } from "./repository/mongo.js";
import type { EventRepository } from "./repository/repository.js";
import { eventService } from "./service.js";

export interface EventsConfig {
  runtime: RuntimeConfig;
  /** Unset: the embedded in-memory store. */
  mongodbUrl?: string;
  database: string;
}

export function readEventsConfig(env: EnvReader): EventsConfig {
  return {
    runtime: readRuntimeConfig(env, { port: 50051, adminPort: 9101 }),
    mongodbUrl: env.optionalUrl("MONGODB_URL", ["mongodb:", "mongodb+srv:"]),
    database: env.string("EVENTS_DATABASE", "myevents_events"),
  };
}

/** Wires the EventService process: store, handlers, runtime. */
export async function startEventsService(config: EventsConfig, logger?: Logger): Promise<RunningService> {
  const log = logger ?? createLogger(config.runtime.logLevel, { service: "events" });
  let repo: EventRepository;
  if (config.mongodbUrl) {
    const mongo = MongoEventRepository.open(config.mongodbUrl, config.database);
    // Indexes are created at start; if the database is down right now the
    // service still starts NOT_SERVING and health reports it.
    await mongo.ensureIndexes().catch((err: Error) =>
      log.warn("could not create indexes yet", { error: err.message, url: redact(config.mongodbUrl!) }),
    );
    repo = mongo;
  } else {
    repo = new MemoryEventRepository();
  }
  log.info("store", { kind: config.mongodbUrl ? "mongodb" : "memory", database: config.mongodbUrl ? config.database : undefined });
  return startService({
    name: "events",
    config: config.runtime,
    logger: log,
    services: [serve(EventService, eventService(repo))],
    dependencies: config.mongodbUrl ? [{ name: "mongodb", check: () => repo.ping() }] : [],
    close: () => repo.close(),
  });
}
