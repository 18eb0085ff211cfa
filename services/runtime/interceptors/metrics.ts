import type { DescMethod } from "@bufbuild/protobuf";
import { Counter, Histogram, type CounterConfiguration, type Registry } from "prom-client";
import { rpcType, type CallObserver, type RpcObserver } from "./outcome.js";

/**
 * RPC metrics under the names go-grpc-prometheus uses, so existing Grafana
 * dashboards and alert rules for gRPC services work unchanged: the server
 * side (grpc_server_*) for calls a service answers, the client side
 * (grpc_client_*) for calls it makes to other services.
 */
export function rpcMetrics(registry: Registry, side: "server" | "client" = "server"): RpcObserver {
  const labels = ["grpc_type", "grpc_service", "grpc_method"] as const;
  const on = side === "server" ? "on the server" : "by the client";
  const started = batchedCounter({
    name: `grpc_${side}_started_total`,
    help: `Total number of RPCs started ${on}.`,
    labelNames: labels,
    registers: [registry],
  });
  const handled = batchedCounter({
    name: `grpc_${side}_handled_total`,
    help: `Total number of RPCs completed ${on}, regardless of success or failure.`,
    labelNames: [...labels, "grpc_code"],
    registers: [registry],
  });
  // The server counts the messages it sends, the client those it receives.
  const messages = batchedCounter({
    name: side === "server" ? "grpc_server_msg_sent_total" : "grpc_client_msg_received_total",
    help: side === "server" ? "Total number of gRPC stream messages sent by the server." : "Total number of RPC stream messages received by the client.",
    labelNames: labels,
    registers: [registry],
  });
  const handling = new Histogram({
    name: `grpc_${side}_handling_seconds`,
    help:
      side === "server"
        ? "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server."
        : "Histogram of response latency (seconds) of the gRPC until it is finished by the application.",
    labelNames: labels,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });

  // Label sets are fixed per method (and code), and so is what observes a
  // call: made once per method, nothing allocated per call.
  const byMethod = new Map<DescMethod, { base: Labels; observer: CallObserver }>();
  const seriesOf = (req: Parameters<RpcObserver>[0]) => {
    const base: Labels = { grpc_type: rpcType(req), grpc_service: req.service.typeName, grpc_method: req.method.name };
    const byCode = new Map<string, Labels>();
    const observer: CallObserver = {
      sent: () => messages.inc(base),
      done({ code, durationSeconds }) {
        let labels = byCode.get(code);
        if (labels === undefined) byCode.set(code, (labels = { ...base, grpc_code: code }));
        handled.inc(labels);
        handling.observe(base, durationSeconds);
      },
    };
    return { base, observer };
  };
  return (req) => {
    let series = byMethod.get(req.method);
    if (series === undefined) byMethod.set(req.method, (series = seriesOf(req)));
    started.inc(series.base);
    return series.observer;
  };
}

type Labels = { grpc_type: string; grpc_service: string; grpc_method: string; grpc_code?: string };

/**
 * A prom-client counter whose increments are added up in a plain map keyed
 * by the (fixed, reused) label object and handed to prom-client when it
 * collects, i.e. on a scrape: prom-client hashes the label set on every
 * `inc`, three counters per call, which showed in (a)'s profile.
 */
function batchedCounter(config: CounterConfiguration<string>): { inc(labels: Labels): void } {
  const pending = new Map<Labels, number>();
  new Counter({
    ...config,
    collect() {
      for (const [labels, n] of pending) this.inc(labels, n);
      pending.clear();
    },
  });
  return { inc: (labels) => void pending.set(labels, (pending.get(labels) ?? 0) + 1) };
}
