// The whole mesh in one process: `npm start`. Without MONGODB_URL and
// AMQP_URL it runs on embedded defaults (in-memory stores, in-process bus).
// Ports: EVENTS_PORT/EVENTS_ADMIN_PORT, BOOKINGS_PORT/BOOKINGS_ADMIN_PORT,
// NOTIFICATIONS_PORT/NOTIFICATIONS_ADMIN_PORT, GATEWAY_PORT/GATEWAY_ADMIN_PORT
// (defaults as in README); other variables apply to every service.
import { readGatewayConfig, startGateway } from "../gateway/app.js";
import { readBookingsConfig, startBookingsService } from "./bookings/app.js";
import { readEventsConfig, startEventsService } from "./events/app.js";
import type { Logger } from "./runtime/logger.js";
import { readNotificationsConfig, startNotificationsService } from "./notifications/app.js";
import { runMain } from "./runtime/main.js";

runMain((env) => {
  const events = readEventsConfig(env, "EVENTS_");
  const bookings = readBookingsConfig(env, "BOOKINGS_");
  const notifications = readNotificationsConfig(env, "NOTIFICATIONS_");
  const gateway = readGatewayConfig(env, "GATEWAY_");
  // Services of this process reach each other on their own ports.
  const local = (port: number) => `http://127.0.0.1:${port}`;
  if (!env.optionalString("EVENTS_URL")) bookings.eventsUrl = gateway.upstreams.events = local(events.runtime.port);
  if (!env.optionalString("BOOKINGS_URL")) gateway.upstreams.bookings = local(bookings.runtime.port);
  if (!env.optionalString("NOTIFICATIONS_URL")) gateway.upstreams.notifications = local(notifications.runtime.port);
  return [
    () => startEventsService(events),
    () => startBookingsService(bookings),
    () => startNotificationsService(notifications),
    () => startGateway(gateway),
  ];
}, "myevents", tokenHint);

/** Reads are open; writes need a bearer token: say how to get one. */
function tokenHint(logger: Logger): void {
  logger.info("mutating RPCs need a bearer token: TOKEN=$(npm run --silent token -- --user alice) (add --admin to create locations and events), then send 'authorization: Bearer $TOKEN'");
}
