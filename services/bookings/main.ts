// The BookingService as its own process: `npm run start:bookings`.
import { runMain } from "../runtime/main.js";
import { readBookingsConfig, startBookingsService } from "./app.js";

runMain((env) => {
  const config = readBookingsConfig(env);
  return [() => startBookingsService(config)];
}, "bookings");
