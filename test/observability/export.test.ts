// OpenTelemetry export: with OTEL_EXPORTER_OTLP_ENDPOINT pointing at a
// local OTLP/HTTP receiver, the spans of a booking (gateway, bookings,
// events, the message and its consumer) arrive there as protobuf, linked
// parent to child; without it (or after shutdown) nothing is sent.
import http from "node:http";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BookingService } from "../../gen/myevents/v1/booking_service_pb.js";
import { MemoryMessageBus } from "../../services/messaging/memory.js";
import { ConfigError, EnvReader } from "../../services/runtime/config.js";
import { readTraceExportConfig, startTraceExport, type TraceExport } from "../../services/runtime/tracing-export.js";
import { isExporting } from "../../services/runtime/tracing.js";
import { eventually, sleep } from "../support/eventually.js";
import { startEvents } from "./mesh.js";
import { asUser } from "../../services/runtime/auth/testing.js";

interface ExportedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
}
const SERVER = 2;
const CLIENT = 3;
const PRODUCER = 4;
const CONSUMER = 5;

/** Decodes an ExportTraceServiceRequest (opentelemetry/proto/collector/trace/v1) down to the fields asserted here. */
function decodeExport(body: Uint8Array): ExportedSpan[] {
  const spans: ExportedSpan[] = [];
  const fields = (bytes: Uint8Array, visit: (field: number, reader: BinaryReader, wire: WireType) => boolean) => {
    const reader = new BinaryReader(bytes);
    while (reader.pos < reader.len) {
      const [field, wire] = reader.tag();
      if (!visit(field, reader, wire)) reader.skip(wire);
    }
  };
  const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
  fields(body, (f, r) => {
    if (f !== 1) return false; // resource_spans
    let service = "";
    const scopeSpans: Uint8Array[] = [];
    fields(r.bytes(), (f2, r2) => {
      if (f2 === 1) {
        // resource.attributes: KeyValue{key=1, value=2 AnyValue{string_value=1}}
        fields(r2.bytes(), (f3, r3) => {
          if (f3 !== 1) return false;
          let key = "";
          let value = "";
          fields(r3.bytes(), (f4, r4) => {
            if (f4 === 1) key = r4.string();
            else if (f4 === 2) fields(r4.bytes(), (f5, r5) => (f5 === 1 ? ((value = r5.string()), true) : false));
            else return false;
            return true;
          });
          if (key === "service.name") service = value;
          return true;
        });
        return true;
      }
      if (f2 === 2) return scopeSpans.push(r2.bytes()) > 0;
      return false;
    });
    for (const scope of scopeSpans) {
      fields(scope, (f3, r3) => {
        if (f3 !== 2) return false; // spans
        const span: ExportedSpan = { service, traceId: "", spanId: "", parentSpanId: "", name: "", kind: 0 };
        fields(r3.bytes(), (f4, r4) => {
          if (f4 === 1) span.traceId = hex(r4.bytes());
          else if (f4 === 2) span.spanId = hex(r4.bytes());
          else if (f4 === 4) span.parentSpanId = hex(r4.bytes());
          else if (f4 === 5) span.name = r4.string();
          else if (f4 === 6) span.kind = r4.int32();
          else return false;
          return true;
        });
        spans.push(span);
        return true;
      });
    }
    return true;
  });
  return spans;
}

/** An OTLP/HTTP receiver: keeps every POST to /v1/traces. */
async function startReceiver() {
  const requests: Array<{ contentType: string | undefined; spans: ExportedSpan[] }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method === "POST" && req.url === "/v1/traces") {
        requests.push({ contentType: req.headers["content-type"], spans: decodeExport(Buffer.concat(chunks)) });
      }
      res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { requests, url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, close: () => server.close() };
}

describe("OTEL_EXPORTER_OTLP_ENDPOINT", () => {
  it("unset: export is off (no SDK is started)", () => {
    expect(readTraceExportConfig(new EnvReader({}), "events")).toBeUndefined();
    expect(readTraceExportConfig(new EnvReader({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", OTEL_SDK_DISABLED: "true" }), "events")).toBeUndefined();
    expect(isExporting()).toBe(false);
  });

  it("read like the OpenTelemetry SDKs: /v1/traces appended, the signal's own endpoint as is, OTEL_SERVICE_NAME wins", () => {
    expect(readTraceExportConfig(new EnvReader({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" }), "events")).toEqual({
      serviceName: "events",
      endpoint: "http://collector:4318/v1/traces",
    });
    const env = new EnvReader({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "https://otlp.example/traces", OTEL_SERVICE_NAME: "events-eu" });
    expect(readTraceExportConfig(env, "events")).toEqual({ serviceName: "events-eu", endpoint: "https://otlp.example/traces" });
  });

  it("bad values stop the process with every problem named", () => {
    const env = new EnvReader({ OTEL_EXPORTER_OTLP_ENDPOINT: "collector:4318", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" });
    readTraceExportConfig(env, "events");
    expect(() => env.done()).toThrow(ConfigError);
    expect(() => env.done()).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT must start with http:\/\/ or https:\/\/[\s\S]*OTEL_EXPORTER_OTLP_PROTOCOL must be "http\/protobuf"/);
  });
});

describe("spans exported over OTLP/HTTP", () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let exporting: TraceExport | undefined;
  let mesh: Awaited<ReturnType<typeof startEvents>>;
  let edge: Awaited<ReturnType<typeof mesh.withBookings>>;
  let eventId: string;

  beforeAll(async () => {
    receiver = await startReceiver();
    // The standard variable, read by the official exporter itself.
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    const config = readTraceExportConfig(new EnvReader(), "mesh-under-test");
    expect(config?.endpoint).toBe(`${receiver.url}/v1/traces`);
    exporting = await startTraceExport(config!);
    // One in-process bus; the event exists before bookings does, so bookings asks events over gRPC.
    const bus = new MemoryMessageBus();
    mesh = await startEvents({ persistent: false, buses: { events: bus, bookings: bus } });
    eventId = (await mesh.newEvent(10)).id;
    edge = await mesh.withBookings();
  }, 60_000);

  afterAll(async () => {
    await exporting?.shutdown();
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    await mesh?.stop();
    receiver?.close();
  });

  it("one booking: gateway, bookings, events, the message and its consumer, each span the child of the one before", async () => {
    const traceId = randomBytes(16).toString("hex");
    const callerSpan = randomBytes(8).toString("hex");
    const bookings = createClient(BookingService, createConnectTransport({ baseUrl: edge.gatewayUrl, httpVersion: "1.1", interceptors: [asUser("otto")] }));
    await bookings.createBooking(
      { eventId, seats: 1, requestId: "export-test" },
      { headers: { traceparent: `00-${traceId}-${callerSpan}-01` } },
    );
    const find = (spans: ExportedSpan[], name: string, kind: number, parent: string) =>
      spans.find((s) => s.name === name && s.kind === kind && s.parentSpanId === parent && s.traceId === traceId);
    const chain = await eventually(async () => {
      await exporting!.flush();
      const spans = receiver.requests.flatMap((r) => r.spans);
      const gateway = find(spans, "myevents.v1.BookingService/CreateBooking", SERVER, callerSpan);
      const forwarded = find(spans, "myevents.v1.BookingService/CreateBooking", CLIENT, gateway?.spanId ?? "-");
      const booking = find(spans, "myevents.v1.BookingService/CreateBooking", SERVER, forwarded?.spanId ?? "-");
      const lookup = find(spans, "myevents.v1.EventService/GetEvent", CLIENT, booking?.spanId ?? "-");
      const getEvent = find(spans, "myevents.v1.EventService/GetEvent", SERVER, lookup?.spanId ?? "-");
      const publish = find(spans, "publish booking.confirmed", PRODUCER, booking?.spanId ?? "-");
      const consume = find(spans, "process booking.confirmed", CONSUMER, publish?.spanId ?? "-");
      const chain = { gateway, forwarded, booking, lookup, getEvent, publish, consume };
      for (const [name, span] of Object.entries(chain)) expect(span, name).toBeDefined();
      return chain;
    }, 15_000);
    expect(chain.gateway!.service).toBe("mesh-under-test");
    expect(receiver.requests.every((r) => r.contentType === "application/x-protobuf")).toBe(true);
    // Health probes (every 200 ms here) are not traced.
    expect(receiver.requests.flatMap((r) => r.spans).some((s) => s.name.startsWith("grpc.health"))).toBe(false);
  });

  it("after shutdown nothing more is exported, and calls still carry trace ids", async () => {
    await exporting!.shutdown();
    exporting = undefined;
    expect(isExporting()).toBe(false);
    const sent = receiver.requests.length;
    const before = mesh.logs.lines.length;
    const bookings = createClient(BookingService, createConnectTransport({ baseUrl: edge.gatewayUrl, httpVersion: "1.1", interceptors: [asUser("otto")] }));
    await bookings.createBooking({ eventId, seats: 1, requestId: "after-shutdown" });
    await sleep(500);
    expect(receiver.requests.length).toBe(sent);
    const rpc = mesh.logs.lines.slice(before).filter((l) => l.msg === "rpc" && l.method !== "/grpc.health.v1.Health/Check");
    expect(rpc.length).toBeGreaterThanOrEqual(2);
    expect(new Set(rpc.map((l) => l.trace_id)).size).toBe(1);
    expect(rpc[0]!.trace_id).toMatch(/^[0-9a-f]{32}$/);
  });
});
