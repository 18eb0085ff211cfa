// Shared by the gateway's tests: the services and the gateway on free
// ports (embedded defaults), and small helpers.
import net from "node:net";
import { ConnectError } from "@connectrpc/connect";
import { readBookingsConfig, startBookingsService } from "../services/bookings/app.js";
import { readEventsConfig, startEventsService } from "../services/events/app.js";
import { readNotificationsConfig, startNotificationsService } from "../services/notifications/app.js";
import { MemoryMessageBus } from "../services/messaging/memory.js";
import { EnvReader } from "../services/runtime/config.js";
import { createLogger } from "../services/runtime/logger.js";
import type { RunningService } from "../services/runtime/server.js";
import { TEST_AUTH_ENV } from "../services/runtime/auth/testing.js";
import { readGatewayConfig, startGateway, type GatewayOptions } from "./app.js";

/** Quiet unless TEST_LOGS is set. */
export const silent = createLogger("debug", {}, process.env.TEST_LOGS ? (line) => process.stderr.write(line) : () => {});

export { eventually, sleep } from "../test/support/eventually.js";

/** The error a call fails with; fails the test if it succeeds. */
export async function failure(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail, it succeeded");
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = net.createServer().listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Free ports, quick health checks, and the test suite's token secret. */
export const LOCAL = { HOST: "127.0.0.1", PORT: "0", ADMIN_PORT: "0", HEALTH_CHECK_INTERVAL_MS: "100", ...TEST_AUTH_ENV };

/** The EventService, BookingService and NotificationService on embedded defaults, sharing one in-process bus. */
export async function startServices(options: { eventsPort?: number } = {}) {
  const bus = new MemoryMessageBus();
  const startEvents = (port: number) =>
    startEventsService(readEventsConfig(new EnvReader({ ...LOCAL, PORT: String(port) })), { logger: silent, bus });
  let events = await startEvents(options.eventsPort ?? 0);
  const eventsPort = events.port;
  const bookings = await startBookingsService(
    readBookingsConfig(new EnvReader({ ...LOCAL, EVENTS_URL: `http://127.0.0.1:${eventsPort}`, BOOKING_STALE_AFTER_MS: "20000" })),
    { logger: silent, bus },
  );
  const notifications = await startNotificationsService(readNotificationsConfig(new EnvReader(LOCAL)), { logger: silent, bus });
  return {
    get events(): RunningService {
      return events;
    },
    bookings,
    notifications,
    eventsUrl: `http://127.0.0.1:${eventsPort}`,
    bookingsUrl: `http://127.0.0.1:${bookings.port}`,
    notificationsUrl: `http://127.0.0.1:${notifications.port}`,
    /** Starts the EventService again on its port (after its shutdown), with an empty store. */
    async restartEvents() {
      events = await startEvents(eventsPort);
    },
    async stop() {
      await notifications.shutdown();
      await bookings.shutdown();
      await events.shutdown();
    },
  };
}

/**
 * A gateway on free ports; `env` overrides (upstream URLs, limits, ...).
 * Its per-client rate limit is off unless `env` sets one: every test
 * request comes from one address, and rate-limit.test.ts tests the limit.
 */
export async function startTestGateway(env: Record<string, string>, options: GatewayOptions = {}) {
  const reader = new EnvReader({ ...LOCAL, WEB_ROOT: "/nonexistent-web-root", RATE_LIMIT_PER_SECOND: "0", ...env });
  const config = readGatewayConfig(reader);
  reader.done();
  const gateway = await startGateway(config, { logger: silent, ...options });
  return { gateway, url: `http://127.0.0.1:${gateway.port}`, admin: `http://127.0.0.1:${gateway.adminPort}` };
}
