import type { BroadcastOptions, ConsumerOptions } from "./port.js";

/** Shared by both adapters so that they validate and default consumer options the same way. */

export const DEFAULT_PREFETCH = 32;
export const DEFAULT_MAX_DELIVERIES = 5;

export interface ConsumerSettings extends ConsumerOptions {
  prefetch: number;
  maxDeliveries: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export function consumerSettings(options: ConsumerOptions): ConsumerSettings {
  const { maxDeliveries = DEFAULT_MAX_DELIVERIES } = options;
  const prefetch = checkCommon(options, DEFAULT_PREFETCH);
  if (!Number.isInteger(maxDeliveries) || maxDeliveries < 1) {
    throw new RangeError(`consumer ${options.name}: maxDeliveries must be a positive integer`);
  }
  return { ...options, prefetch, maxDeliveries };
}

/** A broadcast listener handles fast in-memory fan-out: a larger window than a work queue's. */
export const DEFAULT_BROADCAST_PREFETCH = 256;

export interface BroadcastSettings extends BroadcastOptions {
  prefetch: number;
}

export function broadcastSettings(options: BroadcastOptions): BroadcastSettings {
  return { ...options, prefetch: checkCommon(options, DEFAULT_BROADCAST_PREFETCH) };
}

/** Checks name, routing keys and prefetch; returns the prefetch. */
function checkCommon(options: { name: string; routingKeys: string[]; prefetch?: number }, defaultPrefetch: number): number {
  const { name, routingKeys, prefetch = defaultPrefetch } = options;
  if (!NAME.test(name)) throw new TypeError(`consumer name ${JSON.stringify(name)} must match ${NAME}`);
  if (routingKeys.length === 0) throw new TypeError(`consumer ${name}: routingKeys is empty`);
  if (!Number.isInteger(prefetch) || prefetch < 1 || prefetch > 65535) {
    throw new RangeError(`consumer ${name}: prefetch must be an integer in 1..65535`);
  }
  return prefetch;
}

/**
 * A message without an id cannot be deduplicated and one without a type
 * cannot be decoded: retrying cannot help, so it goes to the DLQ at once.
 */
export function isWellFormed(message: { messageId?: unknown; type?: unknown }): boolean {
  return typeof message.messageId === "string" && message.messageId !== "" && typeof message.type === "string" && message.type !== "";
}
