import { createGrpcTransport } from "@connectrpc/connect-node";
import { Registry } from "prom-client";
import { BookingService } from "../../gen/myevents/v1/booking_service_pb.js";
import { startBackbone, type ServiceStartOptions } from "../runtime/backbone.js";
import { EnvReader, readRuntimeConfig, type RuntimeConfig } from "../runtime/config.js";
import { clientObservabilityInterceptor } from "../runtime/interceptors/observability.js";
import { createLogger } from "../runtime/logger.js";
import { serve, startService, type RunningService } from "../runtime/server.js";
import { openStore } from "../runtime/store.js";
import { forwardCallerCredentials } from "../runtime/auth/propagation.js";
import { BookingAdmission } from "./admission.js";
import { Bookings } from "./bookings.js";
import { BOOKINGS_ROUTING_KEYS, bookingsEventHandler } from "./consumers.js";
import { eventLookupOverGrpc } from "./event-lookup.js";
import { BookingMetrics } from "./metrics.js";
import { MemoryBookingRepository } from "./repository/memory.js";
import type { BookingRepository } from "./repository/repository.js";
import { bookingService } from "./service.js";

export interface BookingsConfig {
  runtime: RuntimeConfig;
  mongodbUrl?: string;
  database: string;
  amqpUrl?: string;
  /** The EventService, asked about events this service has not heard of. */
  eventsUrl: string;
  /** An operation unfinished after this long is taken over by recovery. */
  staleAfterMs: number;
  recoveryIntervalMs: number;
  /** Load shedding: CreateBooking calls in progress per event and per process (see admission.ts). */
  maxBookingsPerEvent: number;
  maxBookingsInFlight: number;
}

export function readBookingsConfig(env: EnvReader, portPrefix = ""): BookingsConfig {
  return {
    runtime: readRuntimeConfig(env, { port: 50052, adminPort: 9102 }, portPrefix),
    mongodbUrl: env.optionalUrl("MONGODB_URL", ["mongodb:", "mongodb+srv:"]),
    database: env.string("BOOKINGS_DATABASE", "myevents_bookings"),
    amqpUrl: env.optionalUrl("AMQP_URL", ["amqp:", "amqps:"]),
    eventsUrl: env.optionalUrl("EVENTS_URL", ["http:", "https:"]) ?? "http://127.0.0.1:50051",
    staleAfterMs: env.int("BOOKING_STALE_AFTER_MS", 30_000, { min: 1_000, max: 3_600_000 }),
    recoveryIntervalMs: env.int("BOOKING_RECOVERY_INTERVAL_MS", 5_000, { min: 100, max: 600_000 }),
    maxBookingsPerEvent: env.int("BOOKING_MAX_PER_EVENT", 32, { min: 1, max: 100_000 }),
    maxBookingsInFlight: env.int("BOOKING_MAX_IN_FLIGHT", 256, { min: 1, max: 1_000_000 }),
  };
}

/** Wires the BookingService process: store, messaging, EventService client, recovery, runtime. */
export async function startBookingsService(config: BookingsConfig, options: ServiceStartOptions = {}): Promise<RunningService> {
  const log = options.logger ?? createLogger(config.runtime.logLevel, { service: "bookings" });
  const { repo, processed, dependencies } = await openStore<BookingRepository>({
    mongodbUrl: config.mongodbUrl,
    database: config.database,
    logger: log,
    mongo: async (url, database) => (await import("./repository/mongo.js")).MongoBookingRepository.open(url, database),
    memory: () => new MemoryBookingRepository(),
  });
  const metrics = new Registry();
  let kick = () => {};
  // Service-to-service calls carry the caller's token and the trace on, and count as grpc_client_* metrics.
  const events = eventLookupOverGrpc(createGrpcTransport({ baseUrl: config.eventsUrl, interceptors: [forwardCallerCredentials(), clientObservabilityInterceptor(metrics)] }));
  const bookings = new Bookings(repo, events, log, {
    staleAfterMs: config.staleAfterMs,
    onOutbox: () => kick(),
    metrics: new BookingMetrics(metrics),
    admission: new BookingAdmission({ maxPerEvent: config.maxBookingsPerEvent, maxInFlight: config.maxBookingsInFlight }),
  });
  const backbone = await startBackbone({
    name: `bookings${options.queueSuffix ?? ""}`,
    amqpUrl: config.amqpUrl,
    bus: options.bus,
    outbox: repo.outboxSources(),
    consume: { routingKeys: BOOKINGS_ROUTING_KEYS, handle: bookingsEventHandler(bookings), processed },
    logger: log,
    metrics,
  });
  kick = () => backbone.relay.kick();

  // Finishes or undoes operations abandoned by a crash or an outage.
  let recovering = false;
  const recovery = setInterval(() => {
    if (recovering) return;
    recovering = true;
    bookings
      .recover()
      .catch((err: Error) => log.warn("recovery round failed", { error: err.message }))
      .finally(() => (recovering = false));
  }, config.recoveryIntervalMs);
  recovery.unref();

  return startService({
    name: "bookings",
    config: config.runtime,
    logger: log,
    metrics,
    services: [serve(BookingService, bookingService(bookings))],
    dependencies: [...dependencies, ...backbone.dependencies],
    close: async () => {
      clearInterval(recovery);
      await backbone.close();
      await repo.close();
    },
  });
}
