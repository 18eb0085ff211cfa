import type { Interceptor } from "@connectrpc/connect";
import type { Registry } from "prom-client";
import type { Logger } from "../logger.js";
import { rpcLog } from "./logging.js";
import { rpcMetrics } from "./metrics.js";
import { observingInterceptor } from "./outcome.js";

/** The log line and the metrics of every RPC, from one observation per call (services and gateway). */
export function observabilityInterceptor(logger: Logger, metrics: Registry): Interceptor {
  return observingInterceptor([rpcLog(logger), rpcMetrics(metrics)]);
}
