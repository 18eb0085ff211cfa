import { Counter, Histogram, type Registry } from "prom-client";
import { rpcType, type RpcObserver } from "./outcome.js";

/**
 * Server RPC metrics under the names go-grpc-prometheus uses, so existing
 * Grafana dashboards and alert rules for gRPC services work unchanged.
 */
export function rpcMetrics(registry: Registry): RpcObserver {
  const labels = ["grpc_type", "grpc_service", "grpc_method"] as const;
  const started = new Counter({
    name: "grpc_server_started_total",
    help: "Total number of RPCs started on the server.",
    labelNames: labels,
    registers: [registry],
  });
  const handled = new Counter({
    name: "grpc_server_handled_total",
    help: "Total number of RPCs completed on the server, regardless of success or failure.",
    labelNames: [...labels, "grpc_code"],
    registers: [registry],
  });
  const sent = new Counter({
    name: "grpc_server_msg_sent_total",
    help: "Total number of gRPC stream messages sent by the server.",
    labelNames: labels,
    registers: [registry],
  });
  const handling = new Histogram({
    name: "grpc_server_handling_seconds",
    help: "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
    labelNames: labels,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });

  return (req) => {
    const base = { grpc_type: rpcType(req), grpc_service: req.service.typeName, grpc_method: req.method.name };
    started.inc(base);
    return {
      sent: () => sent.inc(base),
      done({ code, durationSeconds }) {
        handled.inc({ ...base, grpc_code: code });
        handling.observe(base, durationSeconds);
      },
    };
  };
}
