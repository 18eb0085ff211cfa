// The gateway as its own process: `node --import tsx gateway/main.ts`.
// Upstreams come from EVENTS_URL, BOOKINGS_URL and NOTIFICATIONS_URL
// ("none" for one that is not deployed).
import { runMain } from "../services/runtime/main.js";
import { readGatewayConfig, startGateway } from "./app.js";

runMain((env) => {
  const config = readGatewayConfig(env);
  return [() => startGateway(config)];
}, "gateway");
