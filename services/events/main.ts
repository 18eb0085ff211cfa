// The EventService as its own process: `npm run start:events`.
import { runMain } from "../runtime/main.js";
import { readEventsConfig, startEventsService } from "./app.js";

runMain((env) => {
  const config = readEventsConfig(env);
  return [() => startEventsService(config)];
}, "events");
