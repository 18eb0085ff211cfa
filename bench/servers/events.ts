// The project's EventService, started the way production starts it:
// startEventsService with the runtime's default interceptors, the embedded
// in-memory store, LOG_LEVEL=info logging to stdout (the parent redirects it).
import { readEventsConfig, startEventsService } from "../../services/events/app.js";
import { EnvReader } from "../../services/runtime/config.js";
import { createLogger } from "../../services/runtime/logger.js";
import { answerStats } from "./ipc.js";

const config = readEventsConfig(
  new EnvReader({ PORT: process.env.PORT ?? "0", ADMIN_PORT: process.env.ADMIN_PORT ?? "0", LOG_LEVEL: "info", HOST: "127.0.0.1", JWT_SECRET: process.env.JWT_SECRET }),
);
const logger = createLogger(config.runtime.logLevel, { service: "events" });
const running = await startEventsService(config, { logger });
answerStats();
process.send!({ type: "ready", port: running.port });
