import type { DescMethod } from "@bufbuild/protobuf";
import { Counter, type CounterConfiguration, type Metric, type Registry, type RegistryContentType } from "prom-client";
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
  const handling = batchedHistogram({
    name: `grpc_${side}_handling_seconds`,
    help:
      side === "server"
        ? "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server."
        : "Histogram of response latency (seconds) of the gRPC until it is finished by the application.",
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

/**
 * A histogram that counts an observation in plain numbers kept per (fixed,
 * reused) label object and builds prom-client's values only when the
 * registry collects, i.e. on a scrape: prom-client's `Histogram.observe`
 * validates and hashes the labels on every call, which showed in (a)'s
 * profile. prom-client has no public way to add counts to a Histogram, so
 * this is a metric object of its own that gives the registry exactly the
 * values a prom-client Histogram would for the same observations (series
 * order, buckets, +Inf, _sum, _count, the same float sums), hence the same
 * exposition; metrics.test.ts compares the two.
 */
export function batchedHistogram(config: {
  name: string;
  help: string;
  buckets: readonly number[];
  registers: Registry<RegistryContentType>[];
}): { observe(labels: Labels, value: number): void } {
  const { name, help, buckets, registers } = config;
  type Series = { labels: Labels; perBucket: number[]; sum: number; count: number };
  // By label object on every call; by label values only when a new object
  // shows up, so equal labels share one series as prom-client's hash makes them.
  let byObject = new Map<Labels, Series>();
  let byValues = new Map<string, Series>();
  const seriesOf = (labels: Labels): Series => {
    const key = JSON.stringify(Object.keys(labels).sort().map((k) => [k, labels[k as keyof Labels]]));
    let series = byValues.get(key);
    if (series === undefined) byValues.set(key, (series = { labels, perBucket: buckets.map(() => 0), sum: 0, count: 0 }));
    byObject.set(labels, series);
    return series;
  };
  // prom-client's values: the series' labels as sharedLabels, which the
  // exposition writes after `le` and the registry's default labels.
  const values = () =>
    Array.from(byValues.values(), ({ labels, perBucket, sum, count }) => {
      let cumulative = 0;
      return [
        ...buckets.map((le, i) => ({ labels: { le }, sharedLabels: labels, value: (cumulative += perBucket[i]!), metricName: `${name}_bucket`, exemplar: null })),
        { labels: { le: "+Inf" }, sharedLabels: labels, value: count, metricName: `${name}_bucket`, exemplar: null },
        { labels: {}, sharedLabels: labels, value: sum, metricName: `${name}_sum`, exemplar: undefined },
        { labels: {}, sharedLabels: labels, value: count, metricName: `${name}_count`, exemplar: undefined },
      ];
    }).flat();
  const metric = {
    name,
    help,
    type: "histogram",
    aggregator: "sum",
    getForPromString: async () => ({ name, help, type: "histogram", values: values(), aggregator: "sum" }),
    // The JSON form (getMetricsAsJSON, cluster aggregation) has the series' labels merged into each value's.
    get: async () => ({
      name,
      help,
      type: "histogram",
      values: values().map(({ labels, sharedLabels, ...value }) => ({ ...value, labels: { ...labels, ...sharedLabels } })),
      aggregator: "sum",
    }),
    reset() {
      byObject = new Map();
      byValues = new Map();
    },
  };
  // The registry reads only the members above.
  for (const registry of registers) registry.registerMetric(metric as unknown as Metric);
  return {
    observe(labels, value) {
      if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
      const series = byObject.get(labels) ?? seriesOf(labels);
      // The first bucket whose bound holds the value; above the last one only +Inf (the count) has it.
      for (let i = 0; i < buckets.length; i++) {
        if (value <= buckets[i]!) {
          series.perBucket[i]!++;
          break;
        }
      }
      series.sum += value;
      series.count++;
    },
  };
}
