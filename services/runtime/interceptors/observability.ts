import type { Interceptor } from "@connectrpc/connect";
import type { Registry } from "prom-client";
import type { Logger } from "../logger.js";
import { rpcLog } from "./logging.js";
import { rpcMetrics } from "./metrics.js";
import { observingInterceptor, type ObservingOptions, type RpcObserver } from "./outcome.js";
import { rpcClientSpan, rpcServerSpan } from "./tracing.js";

/**
 * The span, the log line and the metrics of every RPC a server answers,
 * from one observation per call (services and gateway), then any `more`
 * observers (the gateway's request record). The span comes first: the
 * rest of the call, log line included, runs in its trace. `settleErrors`
 * does errorsInterceptor()'s work here (see ObservingOptions).
 */
export function observabilityInterceptor(logger: Logger, metrics: Registry, more: RpcObserver[] = [], options: ObservingOptions = {}): Interceptor {
  return observingInterceptor([rpcServerSpan(), rpcLog(logger), rpcMetrics(metrics), ...more], "server", options);
}

/**
 * The same for calls a process makes to other services (a transport's
 * interceptor): a client span whose `traceparent` goes with the request,
 * and grpc_client_* metrics. Make one per registry and share it between
 * transports.
 */
export function clientObservabilityInterceptor(metrics: Registry): Interceptor {
  return observingInterceptor([rpcClientSpan(), rpcMetrics(metrics, "client")], "client");
}
