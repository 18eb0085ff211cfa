// The mesh the browser tests drive, as in production but in this process:
// EventService, BookingService, NotificationService and the gateway (serving web/dist) on free
// ports, over FerretDB and the run's RabbitMQ vhost, with queues and
// databases of their own.
import { randomBytes } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { TEST_AUTH_ENV, asAdmin, asUser, testToken } from "../../services/runtime/auth/testing.js";
import { createConnectTransport } from "@connectrpc/connect-node";
import { BookingService } from "../../gen/myevents/v1/booking_service_pb.js";
import { EventService } from "../../gen/myevents/v1/event_service_pb.js";
import { readGatewayConfig, startGateway } from "../../gateway/app.js";
import { readBookingsConfig, startBookingsService } from "../../services/bookings/app.js";
import { readEventsConfig, startEventsService } from "../../services/events/app.js";
import { readNotificationsConfig, startNotificationsService } from "../../services/notifications/app.js";
import { EnvReader } from "../../services/runtime/config.js";
import { createLogger } from "../../services/runtime/logger.js";
import type { RunningService } from "../../services/runtime/server.js";
import { amqpUrl, mongodbUrl, uniqueDatabaseName } from "../support/backing.js";

export const WEB_ROOT = path.resolve(fileURLToPath(new URL("../../web/dist", import.meta.url)));

const logger = createLogger("error", {}, process.env.TEST_LOGS ? (line) => process.stderr.write(line) : () => {});

export async function startMesh() {
  const suffix = `.browser-${randomBytes(4).toString("hex")}`;
  const common = {
    HOST: "127.0.0.1",
    PORT: "0",
    ADMIN_PORT: "0",
    HEALTH_CHECK_INTERVAL_MS: "200",
    MONGODB_URL: mongodbUrl(),
    AMQP_URL: amqpUrl(),
    ...TEST_AUTH_ENV,
  };
  const started: RunningService[] = [];
  const stop = async () => {
    for (const service of started.reverse()) await service.shutdown();
  };
  try {
    const events = await startEventsService(readEventsConfig(new EnvReader({ ...common, EVENTS_DATABASE: uniqueDatabaseName("web_events") })), {
      logger,
      queueSuffix: suffix,
    });
    started.push(events);
    const bookings = await startBookingsService(
      readBookingsConfig(
        new EnvReader({ ...common, BOOKINGS_DATABASE: uniqueDatabaseName("web_bookings"), EVENTS_URL: `http://127.0.0.1:${events.port}` }),
      ),
      { logger, queueSuffix: suffix },
    );
    started.push(bookings);
    const notifications = await startNotificationsService(readNotificationsConfig(new EnvReader(common)), { logger, queueSuffix: suffix });
    started.push(notifications);
    const gateway = await startGateway(
      readGatewayConfig(
        new EnvReader({
          ...common,
          WEB_ROOT,
          EVENTS_URL: `http://127.0.0.1:${events.port}`,
          BOOKINGS_URL: `http://127.0.0.1:${bookings.port}`,
          NOTIFICATIONS_URL: `http://127.0.0.1:${notifications.port}`,
        }),
      ),
      { logger },
    );
    started.push(gateway);
    const url = `http://127.0.0.1:${gateway.port}`;
    const transport = (as: Interceptor) => createConnectTransport({ baseUrl: url, httpVersion: "1.1", interceptors: [as] });
    return {
      url,
      /** EventService as an administrator, through the gateway. */
      admin: createClient(EventService, transport(asAdmin())),
      /** BookingService as `user`, through the gateway. */
      bookingsAs: (user: string) => createClient(BookingService, transport(asUser(user))),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A token for `user` that the mesh accepts, as `npm run token` prints one. */
export const tokenFor = (user: string, options: { admin?: boolean } = {}) => testToken(user, options);
