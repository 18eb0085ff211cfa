// lazy-drivers.test.ts's child: starts the service named in argv from the
// environment, then prints (after "drivers ", among the log lines) which drivers the process has loaded (both are
// CommonJS packages, so they show in require.cache however imported).
import { createRequire } from "node:module";
import { readBookingsConfig, startBookingsService } from "../bookings/app.js";
import { readEventsConfig, startEventsService } from "../events/app.js";
import { readNotificationsConfig, startNotificationsService } from "../notifications/app.js";
import { EnvReader } from "./config.js";

const env = new EnvReader(process.env);
const service = process.argv[2];
if (service === "events") await startEventsService(readEventsConfig(env));
else if (service === "bookings") await startBookingsService(readBookingsConfig(env));
else if (service === "notifications") await startNotificationsService(readNotificationsConfig(env));
else throw new Error(`unknown service ${service}`);

const loaded = Object.keys(createRequire(import.meta.url).cache);
const has = (pkg: string) => loaded.some((path) => path.includes(`/node_modules/${pkg}/`));
console.log(`drivers ${JSON.stringify({ mongodb: has("mongodb"), amqplib: has("amqplib") })}`);
process.exit(0);
