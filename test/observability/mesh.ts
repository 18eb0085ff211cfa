import { randomBytes } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { connect } from "amqplib";
import { MongoClient } from "mongodb";
import { readGatewayConfig, startGateway } from "../../gateway/app.js";
import { EventService } from "../../gen/myevents/v1/event_service_pb.js";
import { readBookingsConfig, startBookingsService } from "../../services/bookings/app.js";
import { readEventsConfig, startEventsService } from "../../services/events/app.js";
import { deadLetterQueueName, queueName } from "../../services/messaging/amqp.js";
import type { MessageBus } from "../../services/messaging/port.js";
import { EnvReader } from "../../services/runtime/config.js";
import { createLogger } from "../../services/runtime/logger.js";
import type { RunningService } from "../../services/runtime/server.js";
import { amqpUrl, mongodbUrl, uniqueDatabaseName } from "../support/backing.js";
import { newEvent } from "../support/events.js";
import { asAdmin, TEST_AUTH_ENV } from "../../services/runtime/auth/testing.js";

/** JSON log lines of one process part, kept for assertions (echoed to stderr with TEST_LOGS=1). */
export class CapturedLogs {
  readonly lines: Array<Record<string, unknown>> = [];
  logger(service: string) {
    return createLogger("debug", { service }, (line) => {
      this.lines.push(JSON.parse(line) as Record<string, unknown>);
      if (process.env.TEST_LOGS) process.stderr.write(line);
    });
  }
  withTrace(traceId: string) {
    return this.lines.filter((l) => l.trace_id === traceId);
  }
}

const LOCAL = { HOST: "127.0.0.1", PORT: "0", ADMIN_PORT: "0", HEALTH_CHECK_INTERVAL_MS: "200", ...TEST_AUTH_ENV };

export interface MeshOptions {
  /** RabbitMQ and MongoDB (FerretDB), as in production; else embedded defaults with these buses. */
  persistent: boolean;
  /** Embedded mode: each service's bus (separate buses make bookings ask events over gRPC). */
  buses?: { events: MessageBus; bookings: MessageBus };
}

/**
 * The EventService, then (after `withBookings`) the BookingService and the
 * gateway, on free ports with their own databases and queues, logging into
 * `logs`. Bookings starts after events so that it has not heard of events
 * created before: a booking for one makes it ask the EventService over gRPC.
 */
export async function startEvents(opts: MeshOptions) {
  const logs = new CapturedLogs();
  const suffix = `.obs-${randomBytes(4).toString("hex")}`;
  const databases = { events: uniqueDatabaseName("obs_events"), bookings: uniqueDatabaseName("obs_bookings") };
  const backing = opts.persistent ? { MONGODB_URL: mongodbUrl(), AMQP_URL: amqpUrl() } : {};
  const running: RunningService[] = [];
  const events = await startEventsService(readEventsConfig(new EnvReader({ ...LOCAL, ...backing, EVENTS_DATABASE: databases.events })), {
    logger: logs.logger("events"),
    queueSuffix: suffix,
    ...(opts.buses ? { bus: opts.buses.events } : {}),
  });
  running.push(events);
  const eventsUrl = `http://127.0.0.1:${events.port}`;
  const eventsClient = createClient(EventService, createGrpcTransport({ baseUrl: eventsUrl, interceptors: [asAdmin()] }));

  return {
    logs,
    events,
    eventsUrl,
    /** An event on sale tomorrow. */
    newEvent: (capacity = 100) => newEvent(eventsClient, capacity),
    async withBookings() {
      const bookings = await startBookingsService(
        readBookingsConfig(new EnvReader({ ...LOCAL, ...backing, BOOKINGS_DATABASE: databases.bookings, EVENTS_URL: eventsUrl })),
        { logger: logs.logger("bookings"), queueSuffix: suffix, ...(opts.buses ? { bus: opts.buses.bookings } : {}) },
      );
      running.push(bookings);
      const env = new EnvReader({ ...LOCAL, WEB_ROOT: "/nonexistent", EVENTS_URL: eventsUrl, BOOKINGS_URL: `http://127.0.0.1:${bookings.port}`, NOTIFICATIONS_URL: "none" });
      const gateway = await startGateway(readGatewayConfig(env), { logger: logs.logger("gateway") });
      running.push(gateway);
      return { bookings, gateway, gatewayUrl: `http://127.0.0.1:${gateway.port}` };
    },
    /** The consumer names (queue "myevents.<name>") of this mesh. */
    consumers: { events: `events${suffix}`, bookings: `bookings${suffix}` },
    async stop() {
      for (const service of running.reverse()) await service.shutdown();
      if (!opts.persistent) return;
      const connection = await connect(amqpUrl());
      const channel = await connection.createChannel();
      for (const name of [`events${suffix}`, `bookings${suffix}`]) {
        await channel.deleteQueue(queueName(name));
        await channel.deleteQueue(deadLetterQueueName(name));
      }
      await connection.close();
      const client = await MongoClient.connect(mongodbUrl());
      for (const db of Object.values(databases)) await client.db(db).dropDatabase();
      await client.close();
    },
  };
}

/** Prometheus text from a service's admin port. */
export async function scrape(service: RunningService): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${service.adminPort}/metrics`);
  return res.text();
}

/** The value of one series (name and exact labels, any order); 0 when absent. */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let total: number | undefined;
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = Object.fromEntries([...(match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total = (total ?? 0) + Number(match[3]);
  }
  return total ?? 0;
}
