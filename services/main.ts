// The whole mesh in one process: `npm start`. Without MONGODB_URL and
// AMQP_URL it runs on embedded defaults (in-memory stores, in-process bus).
// Ports: EVENTS_PORT/EVENTS_ADMIN_PORT, BOOKINGS_PORT/BOOKINGS_ADMIN_PORT
// (defaults as in README); other variables apply to every service.
import { readBookingsConfig, startBookingsService } from "./bookings/app.js";
import { readEventsConfig, startEventsService } from "./events/app.js";
import { runMain } from "./runtime/main.js";

runMain((env) => {
  const events = readEventsConfig(env, "EVENTS_");
  const bookings = readBookingsConfig(env, "BOOKINGS_");
  // Bookings asks the EventService of this same process.
  if (!env.optionalString("EVENTS_URL")) bookings.eventsUrl = `http://127.0.0.1:${events.runtime.port}`;
  env.done();
  return [() => startEventsService(events), () => startBookingsService(bookings)];
});
