import { Histogram, Registry, type RegistryContentType } from "prom-client";
import { describe, expect, it } from "vitest";
import { batchedHistogram } from "./metrics.js";

const config = { name: "rpc_seconds", help: "Latency of an RPC, with \"quotes\" and a \\ backslash.", buckets: [0.001, 0.0025, 0.005, 0.01, 0.1, 1, 10] };
const getEvent = { grpc_type: "unary", grpc_service: "myevents.v1.EventService", grpc_method: "GetEvent" };
const listEvents = { grpc_type: "unary", grpc_service: "myevents.v1.EventService", grpc_method: "ListEvents" };
// Bounds themselves, between them, zero, above the last bound, and sums that round.
const durations = [0.001, 0.0025, 0.0007, 0.1, 0.30000000000000004, 0.2, 12, 0, 10, 1e-9, 0.0049, 3.3];

/** A prom-client Histogram and a batched one, each in a registry with the same default labels. */
function pair(contentType: RegistryContentType = Registry.PROMETHEUS_CONTENT_TYPE) {
  const reference = new Registry<RegistryContentType>();
  const batched = new Registry<RegistryContentType>();
  for (const registry of [reference, batched]) {
    registry.setContentType(contentType);
    registry.setDefaultLabels({ service: "events" });
  }
  const histogram = new Histogram({ ...config, labelNames: ["grpc_type", "grpc_service", "grpc_method"], registers: [] });
  reference.registerMetric(histogram);
  return { reference, batched, histogram, observer: batchedHistogram({ ...config, registers: [batched] }) };
}

describe("batchedHistogram", () => {
  it("exposes what prom-client's Histogram exposes for the same observations, across scrapes", async () => {
    const { reference, batched, histogram, observer } = pair();
    expect(await batched.metrics()).toBe(await reference.metrics()); // nothing observed yet: header lines only
    for (const [i, seconds] of durations.entries()) {
      const labels = i % 3 === 0 ? listEvents : getEvent;
      histogram.observe(labels, seconds);
      observer.observe(labels, seconds);
    }
    const text = await batched.metrics();
    expect(text).toBe(await reference.metrics());
    expect(text).toContain('rpc_seconds_bucket{le="0.0025",service="events",grpc_type="unary",grpc_service="myevents.v1.EventService",grpc_method="GetEvent"} 3');
    // A scrape does not reset anything: later observations add to the totals.
    for (const seconds of durations.slice(0, 5)) {
      histogram.observe(getEvent, seconds);
      observer.observe(getEvent, seconds);
    }
    expect(await batched.metrics()).toBe(await reference.metrics());
    expect(await batched.getMetricsAsJSON()).toEqual(await reference.getMetricsAsJSON());
  });

  it("gives equal labels in different objects one series, as prom-client does", async () => {
    const { reference, batched, histogram, observer } = pair(Registry.OPENMETRICS_CONTENT_TYPE);
    for (const seconds of durations) {
      const labels = { ...getEvent };
      histogram.observe(labels, seconds);
      observer.observe(labels, seconds);
    }
    expect(await batched.metrics()).toBe(await reference.metrics());
  });

  it("starts over on a registry reset and rejects what is not a number, like prom-client", async () => {
    const { reference, batched, histogram, observer } = pair();
    histogram.observe(getEvent, 0.5);
    observer.observe(getEvent, 0.5);
    reference.resetMetrics();
    batched.resetMetrics();
    histogram.observe(listEvents, 0.02);
    observer.observe(listEvents, 0.02);
    expect(await batched.metrics()).toBe(await reference.metrics());
    expect(() => observer.observe(getEvent, Number.NaN)).toThrow(TypeError);
  });
});
