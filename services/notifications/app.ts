import { Registry } from "prom-client";
import { NotificationService } from "../../gen/myevents/v1/notification_service_pb.js";
import { openMessageBus, type ServiceStartOptions } from "../runtime/backbone.js";
import { EnvReader, readRuntimeConfig, type RuntimeConfig } from "../runtime/config.js";
import { createLogger } from "../runtime/logger.js";
import { serve, startService, type RunningService } from "../runtime/server.js";
import { NotificationHub } from "./hub.js";
import { NOTIFICATION_ROUTING_KEYS, toNotification } from "./notifications.js";
import { notificationService } from "./service.js";

export interface NotificationsConfig {
  runtime: RuntimeConfig;
  /** Unset: the in-process bus. */
  amqpUrl?: string;
  /** A stream quiet for this long gets a heartbeat. */
  heartbeatIntervalMs: number;
  /** Notifications a subscriber may have waiting before its stream ends (ResourceExhausted). */
  bufferSize: number;
}

export function readNotificationsConfig(env: EnvReader, portPrefix = ""): NotificationsConfig {
  return {
    runtime: readRuntimeConfig(env, { port: 50053, adminPort: 9103 }, portPrefix),
    amqpUrl: env.optionalUrl("AMQP_URL", ["amqp:", "amqps:"]),
    heartbeatIntervalMs: env.int("NOTIFICATION_HEARTBEAT_INTERVAL_MS", 15_000, { min: 10, max: 600_000 }),
    bufferSize: env.int("NOTIFICATION_BUFFER_SIZE", 256, { min: 1, max: 100_000 }),
  };
}

/**
 * Wires the NotificationService process: a broadcast subscription to the
 * domain events (every instance gets every one), the hub that fans them
 * out to Subscribe streams, the runtime. No database: it keeps nothing.
 */
export async function startNotificationsService(config: NotificationsConfig, options: ServiceStartOptions = {}): Promise<RunningService> {
  const log = options.logger ?? createLogger(config.runtime.logLevel, { service: "notifications" });
  const metrics = new Registry();
  const hub = new NotificationHub({ heartbeatIntervalMs: config.heartbeatIntervalMs, bufferSize: config.bufferSize, metrics, logger: log });
  const opened = await openMessageBus(config.amqpUrl, log, options.bus);
  await opened.bus.whenConnected?.(3_000).catch(() => log.warn("broker not reachable yet; starting without it"));
  const subscription = await opened.bus
    .broadcast({
      name: `notifications${options.queueSuffix ?? ""}`,
      routingKeys: NOTIFICATION_ROUTING_KEYS,
      handle: (message) => {
        hub.countReceived(message.routingKey);
        const notification = toNotification(message);
        if (notification) hub.publish(notification);
      },
      onActiveChange: (active) => hub.setAvailable(active),
    })
    .catch(async (err: unknown) => {
      await opened.close();
      throw err;
    });
  hub.setAvailable(subscription.active);

  const running = await startService({
    name: "notifications",
    config: config.runtime,
    logger: log,
    metrics,
    services: [serve(NotificationService, notificationService(hub))],
    dependencies: [
      ...opened.dependencies,
      // Connected is not enough: ready once the broadcast queue is declared and consumed.
      {
        name: "notification-feed",
        check: async () => {
          if (!subscription.active) throw new Error("not subscribed to the exchange");
        },
      },
    ],
    close: async () => {
      await subscription.stop();
      await opened.close();
    },
  });
  return {
    ...running,
    // Open streams end first (they would otherwise hold the drain to its
    // timeout); then the runtime drains, NOT_SERVING, and closes.
    shutdown: () => {
      hub.close();
      return running.shutdown();
    },
  };
}
