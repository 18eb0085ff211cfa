// The NotificationService as its own process: `npm run start:notifications`.
import { runMain } from "../runtime/main.js";
import { readNotificationsConfig, startNotificationsService } from "./app.js";

runMain((env) => {
  const config = readNotificationsConfig(env);
  return [() => startNotificationsService(config)];
}, "notifications");
