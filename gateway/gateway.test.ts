// The Node gateway's own behaviour, beyond the edge conformance suite:
// what reaches an upstream (headers, deadlines, cancellation), streaming,
// readiness, metrics, static files, configuration and the REST mapping
// rules. Stand-in upstreams run on the shared service runtime.
import { mkdtemp, mkdir, rm, symlink, writeFile } from "node:fs/promises";
import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { create, createFileRegistry, setExtension, toJson, type DescMessage, type DescService, type JsonObject, type MessageInitShape } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  file_google_protobuf_timestamp,
  FileDescriptorProtoSchema,
  MethodOptionsSchema,
} from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { http as httpOption } from "../gen/google/api/annotations_pb.js";
import { CustomHttpPatternSchema, HttpRuleSchema } from "../gen/google/api/http_pb.js";
import { BookingService } from "../gen/myevents/v1/booking_service_pb.js";
import { EventState } from "../gen/myevents/v1/event_pb.js";
import { EventService } from "../gen/myevents/v1/event_service_pb.js";
import { NotificationService, SubscribeResponseSchema, type SubscribeResponse } from "../gen/myevents/v1/notification_service_pb.js";
import { ConfigError, EnvReader, readRuntimeConfig } from "../services/runtime/config.js";
import { serve, startService, type RunningService } from "../services/runtime/server.js";
import { readGatewayConfig } from "./app.js";
import type { Forwarder } from "./forward.js";
import { matchPath, parsePathTemplate } from "./path-template.js";
import { RestTranscoder, restRoutes } from "./rest.js";
import { closedPort, eventually, failure, LOCAL, silent, sleep, startServices, startTestGateway } from "./test-support.js";
import { authHeader } from "../services/runtime/auth/testing.js";

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

// --- A stand-in upstream ----------------------------------------------------------

interface Seen {
  headers: Record<string, string>;
  timeoutMs: number | undefined;
  aborted?: boolean;
}

/** EventService.GetEvent and NotificationService.Subscribe that record what reaches them. */
async function startRecordingUpstream() {
  const seen: Seen[] = [];
  const record = (ctx: { requestHeader: Headers; timeoutMs(): number | undefined }) => {
    const entry: Seen = { headers: Object.fromEntries(ctx.requestHeader), timeoutMs: ctx.timeoutMs() };
    seen.push(entry);
    return entry;
  };
  const change = (n: number) => create(SubscribeResponseSchema, { messageId: `m${n}`, change: { case: "eventChange", value: { eventId: "e1", seatsAvailable: n, state: EventState.SCHEDULED } } });
  const waitForAbort = (signal: AbortSignal, entry: Seen) =>
    new Promise<never>((_, reject) => {
      const aborted = () => {
        entry.aborted = true;
        clearTimeout(timer);
        reject(signal.reason);
      };
      const timer = setTimeout(() => reject(new ConnectError("too slow", Code.Internal)), 10_000);
      // On a loaded machine the deadline may have passed before the handler ran: no abort event then.
      if (signal.aborted) return aborted();
      signal.addEventListener("abort", aborted);
    });
  const config = readRuntimeConfig(new EnvReader(LOCAL), { port: 0, adminPort: 0 });
  const upstream: RunningService = await startService({
    name: "stand-in",
    config,
    logger: silent,
    services: [
      serve(EventService, {
        async getEvent(req, ctx) {
          const entry = record(ctx);
          if (req.id === "slow") await waitForAbort(ctx.signal, entry);
          return { event: { id: req.id, name: "echo" } };
        },
      }),
      serve(NotificationService, {
        async *subscribe(req, ctx) {
          const entry = record(ctx);
          entry.headers["event-ids"] = req.eventIds.join(",");
          switch (req.eventIds[0]) {
            case "fail-now":
              throw new ConnectError("not for you", Code.PermissionDenied);
            case "fail-later":
              yield change(1);
              throw new ConnectError("no more for you", Code.PermissionDenied);
            case "forever":
              for (let n = 0; !ctx.signal.aborted; n++) {
                yield change(n);
                await sleep(20);
              }
              entry.aborted = true;
              return;
            default:
              for (let n = 1; n <= 3; n++) yield change(n);
          }
        },
      }),
    ],
  });
  return { seen, url: `http://127.0.0.1:${upstream.port}`, expected: [1, 2, 3].map(change), stop: () => upstream.shutdown() };
}

const PROTOCOLS: Record<string, (baseUrl: string) => Transport> = {
  "gRPC (HTTP/2)": (baseUrl) => createGrpcTransport({ baseUrl }),
  "Connect JSON (HTTP/1.1)": (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "1.1" }),
  "Connect binary (HTTP/2)": (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true }),
  "gRPC-Web (HTTP/1.1)": (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
};

const FORWARDED = {
  authorization: "", // a valid token, signed in beforeAll (the stand-in verifies it)
  traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
  tracestate: "vendor=value",
};
// x-user-id was the development identity before tokens: no longer trusted, so not forwarded.
const NOT_FORWARDED = { cookie: "session=secret", "x-internal": "1", "x-user-id": "alice" };

/**
 * Identity goes on as sent; the trace goes on in the caller's trace (same
 * trace id, flags and tracestate) with the gateway's own span as the parent.
 */
function expectForwarded(headers: Record<string, string>) {
  expect(headers).toMatchObject({ authorization: FORWARDED.authorization, tracestate: FORWARDED.tracestate });
  const [version, traceId, parentId, flags] = FORWARDED.traceparent.split("-");
  expect(headers.traceparent).toMatch(new RegExp(`^${version}-${traceId}-[0-9a-f]{16}-${flags}$`));
  expect(headers.traceparent).not.toContain(parentId);
}

describe("forwarding to an upstream", () => {
  let upstream: Awaited<ReturnType<typeof startRecordingUpstream>>;
  let gw: Awaited<ReturnType<typeof startTestGateway>>;
  beforeAll(async () => {
    FORWARDED.authorization = (await authHeader("alice")).authorization;
    upstream = await startRecordingUpstream();
    gw = await startTestGateway({ EVENTS_URL: upstream.url, NOTIFICATIONS_URL: upstream.url, BOOKINGS_URL: "none", MAX_DEADLINE_MS: "30000" });
  });
  afterAll(async () => {
    await gw?.gateway.shutdown();
    await upstream?.stop();
  });
  const last = () => upstream.seen.at(-1)!;

  for (const [name, transport] of Object.entries(PROTOCOLS)) {
    it(`${name}: forwards identity and trace headers only, and the caller's deadline, capped`, async () => {
      const events = createClient(EventService, transport(gw.url));
      await events.getEvent({ id: "echo" }, { headers: { ...FORWARDED, ...NOT_FORWARDED }, timeoutMs: 5_000 });
      expectForwarded(last().headers);
      for (const header of Object.keys(NOT_FORWARDED)) expect(last().headers).not.toHaveProperty(header);
      expect(last().timeoutMs).toBeGreaterThan(4_000);
      expect(last().timeoutMs).toBeLessThanOrEqual(5_000);
      // No deadline: MAX_DEADLINE_MS; a longer one: capped to it.
      await events.getEvent({ id: "echo" });
      expect(last().timeoutMs).toBeGreaterThan(25_000);
      expect(last().timeoutMs).toBeLessThanOrEqual(30_000);
      await events.getEvent({ id: "echo" }, { timeoutMs: 120_000 });
      expect(last().timeoutMs).toBeLessThanOrEqual(30_000);
    });

    it(`${name}: a deadline passing at a slow upstream gives DeadlineExceeded and cancels the upstream call`, async () => {
      const events = createClient(EventService, transport(gw.url));
      const began = Date.now();
      expect((await failure(events.getEvent({ id: "slow" }, { timeoutMs: 200 }))).code).toBe(Code.DeadlineExceeded);
      expect(Date.now() - began).toBeLessThan(2_000);
      const call = last();
      await eventually(() => expect(call.aborted).toBe(true));
    });

    it(`${name}: streams Subscribe, errors included, and stops the upstream stream when the caller leaves`, async () => {
      const notifications = createClient(NotificationService, transport(gw.url));
      const received: SubscribeResponse[] = [];
      for await (const message of notifications.subscribe({ eventIds: ["three", "b"] })) received.push(message);
      expect(received).toEqual(upstream.expected);
      expect(last().headers["event-ids"]).toBe("three,b");

      const partial: SubscribeResponse[] = [];
      const later = await failure(
        (async () => {
          for await (const message of notifications.subscribe({ eventIds: ["fail-later"] })) partial.push(message);
        })(),
      );
      expect({ code: later.code, message: later.rawMessage, received: partial.length }).toEqual({ code: Code.PermissionDenied, message: "no more for you", received: 1 });
      expect((await failure((async () => { for await (const _ of notifications.subscribe({ eventIds: ["fail-now"] })); })())).code).toBe(Code.PermissionDenied);

      const abort = new AbortController();
      let count = 0;
      await failure(
        (async () => {
          for await (const _ of notifications.subscribe({ eventIds: ["forever"] }, { signal: abort.signal })) if (++count === 3) abort.abort();
        })(),
      );
      const stream = last();
      await eventually(() => expect(stream.aborted).toBe(true));
    });
  }

  it("REST: forwards the same headers; grpc-timeout sets the deadline; a slow upstream gives 504", async () => {
    const res = await fetch(`${gw.url}/v1/events/echo`, { headers: { ...FORWARDED, ...NOT_FORWARDED, "grpc-timeout": "5S" } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as JsonObject).event).toMatchObject({ id: "echo", name: "echo" });
    expectForwarded(last().headers);
    for (const header of Object.keys(NOT_FORWARDED)) expect(last().headers).not.toHaveProperty(header);
    expect(last().timeoutMs).toBeLessThanOrEqual(5_000);
    await fetch(`${gw.url}/v1/events/echo`);
    expect(last().timeoutMs).toBeGreaterThan(25_000);

    const slow = await fetch(`${gw.url}/v1/events/slow`, { headers: { "grpc-timeout": "200m" } });
    expect(slow.status).toBe(504);
    expect(await slow.json()).toMatchObject({ code: Code.DeadlineExceeded });
    const call = last();
    await eventually(() => expect(call.aborted).toBe(true));
    expect((await fetch(`${gw.url}/v1/events/echo`, { headers: { "grpc-timeout": "soon" } })).status).toBe(400);
  });

  it("REST: streams Subscribe as newline-delimited JSON, repeated query parameters as a list", async () => {
    const res = await fetch(`${gw.url}/v1/notifications?event_ids=three&event_ids=b`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    const lines = (await res.text()).trim().split("\n").map((line) => JSON.parse(line) as JsonObject);
    expect(lines).toEqual(upstream.expected.map((m) => toJson(SubscribeResponseSchema, m, { alwaysEmitImplicit: true })));
    expect(last().headers["event-ids"]).toBe("three,b");

    // A failure after the first message ends the stream with an error line.
    const later = (await (await fetch(`${gw.url}/v1/notifications?eventIds=fail-later`)).text()).trim().split("\n");
    expect(later).toHaveLength(2);
    expect(JSON.parse(later[1]!)).toEqual({ error: { code: Code.PermissionDenied, message: "no more for you", details: [] } });
    // A failure before any message is a plain error response.
    const now = await fetch(`${gw.url}/v1/notifications?event_ids=fail-now`);
    expect(now.status).toBe(403);
    expect(await now.json()).toEqual({ code: Code.PermissionDenied, message: "not for you", details: [] });

    // The caller leaving stops the upstream stream.
    const abort = new AbortController();
    const forever = await fetch(`${gw.url}/v1/notifications?event_ids=forever`, { signal: abort.signal });
    const reader = forever.body!.getReader();
    await reader.read();
    const stream = last();
    abort.abort();
    await eventually(() => expect(stream.aborted).toBe(true));
  });

  it("answers Unimplemented for a service without upstream (\"none\"), 501 over REST", async () => {
    const bookings = createClient(BookingService, createConnectTransport({ baseUrl: gw.url, httpVersion: "1.1" }));
    expect((await failure(bookings.listBookings({}))).code).toBe(Code.Unimplemented);
    expect((await fetch(`${gw.url}/v1/bookings`)).status).toBe(501);
  });

  it("counts requests per route, protocol and code on the admin port", async () => {
    const events = createClient(EventService, createGrpcTransport({ baseUrl: gw.url }));
    await events.getEvent({ id: "echo" });
    await fetch(`${gw.url}/v1/events/echo`);
    await fetch(`${gw.url}/v1/nothing`);
    const metrics = await (await fetch(`${gw.admin}/metrics`)).text();
    expect(metrics).toMatch(/gateway_requests_total\{route="\/myevents\.v1\.EventService\/GetEvent",protocol="grpc",code="OK"[^}]*\} \d+/);
    expect(metrics).toMatch(/gateway_requests_total\{route="GET \/v1\/events\/\{id\}",protocol="rest",code="OK"[^}]*\} \d+/);
    expect(metrics).toMatch(/gateway_requests_total\{route="unmatched",protocol="rest",code="NotFound"[^}]*\} \d+/);
    expect(metrics).toMatch(/gateway_request_duration_seconds_bucket\{[^}]*route="GET \/v1\/events\/\{id\}"/);
    expect(metrics).toMatch(/grpc_server_handled_total\{[^}]*grpc_service="myevents\.v1\.EventService",grpc_method="GetEvent",grpc_code="OK"/);
  });
});

describe("gateway lifecycle", () => {
  it("ends open streams with Unavailable at shutdown and drains", async () => {
    const upstream = await startRecordingUpstream();
    cleanups.push(upstream.stop);
    const { gateway, url } = await startTestGateway({ EVENTS_URL: upstream.url, NOTIFICATIONS_URL: upstream.url, BOOKINGS_URL: "none", SHUTDOWN_TIMEOUT_MS: "10000" });
    const notifications = createClient(NotificationService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
    let count = 0;
    let stopping: Promise<void> | undefined;
    const began = Date.now();
    const error = await failure(
      (async () => {
        for await (const _ of notifications.subscribe({ eventIds: ["forever"] })) if (++count === 2) stopping = gateway.shutdown();
      })(),
    );
    expect(error.code).toBe(Code.Unavailable);
    await stopping;
    expect(Date.now() - began).toBeLessThan(5_000);
  });

  it("answers Unavailable, without the upstream's address, when an upstream is unreachable", async () => {
    const { gateway, url } = await startTestGateway({ EVENTS_URL: `http://127.0.0.1:${await closedPort()}`, BOOKINGS_URL: "none", NOTIFICATIONS_URL: "none" });
    cleanups.push(() => gateway.shutdown());
    const error = await failure(createClient(EventService, createGrpcTransport({ baseUrl: url })).getEvent({ id: "x" }));
    expect(error.code).toBe(Code.Unavailable);
    expect(error.rawMessage).not.toContain("127.0.0.1");
    const rest = await fetch(`${url}/v1/events/x`);
    expect(rest.status).toBe(503);
  });

  it("answers Unavailable when the upstream resets the call without an answer (the process died mid-call)", async () => {
    // An upstream that accepts each call and resets its stream, as a killed process's connection does.
    const resets = http2.createServer((req) => req.stream.close(http2.constants.NGHTTP2_CANCEL));
    await new Promise<void>((resolve) => resets.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise<void>((resolve) => resets.close(() => resolve())));
    const upstream = `http://127.0.0.1:${(resets.address() as AddressInfo).port}`;
    const { gateway, url } = await startTestGateway({ EVENTS_URL: "none", BOOKINGS_URL: upstream, NOTIFICATIONS_URL: "none" });
    cleanups.push(() => gateway.shutdown());
    const bookings = createClient(BookingService, createGrpcTransport({ baseUrl: url }));
    const error = await failure(bookings.createBooking({ eventId: "e", seats: 1, requestId: "r" }, { timeoutMs: 5_000 }));
    expect(error.code).toBe(Code.Unavailable); // retryable with the same request_id; not Canceled
    expect(error.rawMessage).not.toContain("127.0.0.1");
  });

  it("is ready only while its upstreams are: /readyz goes 503 when one stops and 200 when it returns", async () => {
    const services = await startServices();
    cleanups.push(() => services.stop());
    const { gateway, url, admin } = await startTestGateway({ EVENTS_URL: services.eventsUrl, BOOKINGS_URL: services.bookingsUrl, NOTIFICATIONS_URL: "none" });
    cleanups.push(() => gateway.shutdown());
    const readyz = async () => ({ status: (await fetch(`${admin}/readyz`)).status });
    await eventually(async () => expect(await readyz()).toEqual({ status: 200 }));

    await services.events.shutdown();
    await eventually(async () => {
      const res = await fetch(`${admin}/readyz`);
      expect(res.status).toBe(503);
      expect(((await res.json()) as { failing: Record<string, string> }).failing).toHaveProperty("events");
    });
    expect((await fetch(`${admin}/healthz`)).status).toBe(200); // alive all along

    await services.restartEvents();
    await eventually(async () => expect(await readyz()).toEqual({ status: 200 }));
    // And calls go through again on a new connection.
    const events = createClient(EventService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
    expect((await events.listLocations({})).locations).toEqual([]);
  });
});

describe("static files", () => {
  let root: string;
  let gw: Awaited<ReturnType<typeof startTestGateway>>;
  beforeAll(async () => {
    const base = await mkdtemp(path.join(tmpdir(), "gateway-web-"));
    root = path.join(base, "dist");
    await mkdir(path.join(root, "assets"), { recursive: true });
    await writeFile(path.join(root, "index.html"), "<!doctype html><title>MyEvents</title>");
    await writeFile(path.join(root, "assets", "app.1234.js"), "console.log('hi')");
    await writeFile(path.join(root, "robots.txt"), "User-agent: *");
    await writeFile(path.join(root, ".env"), "SECRET=1");
    await writeFile(path.join(base, "secret.txt"), "outside");
    await symlink(base, path.join(root, "escape"));
    gw = await startTestGateway({ WEB_ROOT: root, EVENTS_URL: "http://127.0.0.1:1", BOOKINGS_URL: "none", NOTIFICATIONS_URL: "none" });
  });
  afterAll(async () => {
    await gw?.gateway.shutdown();
    await rm(path.dirname(root), { recursive: true, force: true });
  });

  /** A GET with the path exactly as given (fetch would normalise "..", this does not). */
  const rawGet = (rawPath: string, method = "GET", headers: Record<string, string> = {}) =>
    new Promise<{ status: number; type: string | undefined; body: string; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port: gw.gateway.port, path: rawPath, method, headers }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode!, type: res.headers["content-type"], body, headers: res.headers }));
      });
      req.on("error", reject);
      req.end();
    });

  it("serves the app's files with their content types and caching", async () => {
    const index = await rawGet("/");
    expect(index).toMatchObject({ status: 200, type: "text/html; charset=utf-8", body: "<!doctype html><title>MyEvents</title>" });
    expect(index.headers["cache-control"]).toBe("no-cache");
    const script = await rawGet("/assets/app.1234.js");
    expect(script).toMatchObject({ status: 200, type: "text/javascript; charset=utf-8" });
    expect(script.headers["cache-control"]).toContain("immutable");
    expect(await rawGet("/robots.txt")).toMatchObject({ status: 200, type: "text/plain; charset=utf-8" });
    const head = await rawGet("/robots.txt", "HEAD");
    expect(head).toMatchObject({ status: 200, body: "" });
    expect(head.headers["content-length"]).toBe("13");
    expect((await rawGet("/robots.txt", "GET", { "if-none-match": script.headers.etag! })).status).toBe(200);
    expect((await rawGet("/robots.txt", "GET", { "if-none-match": head.headers.etag! })).status).toBe(304);
    expect((await rawGet("/", "DELETE")).status).toBe(405);
  });

  it("answers client-side routes with index.html, missing files with 404", async () => {
    expect(await rawGet("/events/42")).toMatchObject({ status: 200, type: "text/html; charset=utf-8" });
    expect((await rawGet("/assets/missing.js")).status).toBe(404);
  });

  it("never serves anything outside the folder", async () => {
    for (const attempt of ["/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/escape/secret.txt", "/.env", "/%00.txt"]) {
      const res = await rawGet(attempt);
      expect(res.body).not.toContain("outside");
      expect(res.body).not.toContain("SECRET");
      expect([200, 400, 404]).toContain(res.status);
      if (res.status === 200) expect(res.type).toBe("text/html; charset=utf-8"); // at most the app's page
    }
  });

  it("answers 404 at / when WEB_ROOT does not exist", async () => {
    const { gateway, url } = await startTestGateway({ WEB_ROOT: "/no/such/folder", EVENTS_URL: "http://127.0.0.1:1", BOOKINGS_URL: "none", NOTIFICATIONS_URL: "none" });
    cleanups.push(() => gateway.shutdown());
    expect((await fetch(`${url}/`)).status).toBe(404);
    expect((await fetch(`${url}/events/42`)).status).toBe(404);
  });
});

describe("configuration", () => {
  it("has the documented defaults", () => {
    const env = new EnvReader({});
    const config = readGatewayConfig(env);
    env.done();
    expect(config).toMatchObject({
      runtime: { port: 8080, adminPort: 9100, host: "0.0.0.0", maxRequestBytes: 4 * 1024 * 1024, maxDeadlineMs: 60_000 },
      upstreams: { events: "http://127.0.0.1:50051", bookings: "http://127.0.0.1:50052", notifications: "http://127.0.0.1:50053" },
      corsAllowedOrigins: ["http://localhost:8080", "http://127.0.0.1:8080", "http://localhost:5173"],
      webRoot: "web/dist",
    });
  });

  it("reads prefixed ports, upstreams (or none) and normalised origins", () => {
    const env = new EnvReader({
      GATEWAY_PORT: "18080",
      GATEWAY_ADMIN_PORT: "19100",
      EVENTS_URL: "http://events:50051",
      NOTIFICATIONS_URL: "none",
      CORS_ALLOWED_ORIGINS: " https://App.Example.com/ , http://localhost:3000",
      WEB_ROOT: "/srv/web",
    });
    const config = readGatewayConfig(env, "GATEWAY_");
    env.done();
    expect(config).toMatchObject({
      runtime: { port: 18080, adminPort: 19100 },
      upstreams: { events: "http://events:50051", bookings: "http://127.0.0.1:50052", notifications: undefined },
      corsAllowedOrigins: ["https://app.example.com", "http://localhost:3000"],
      webRoot: "/srv/web",
    });
  });

  it("names every bad variable at once", () => {
    const env = new EnvReader({ PORT: "http", BOOKINGS_URL: "amqp://x", CORS_ALLOWED_ORIGINS: "https://ok.example,ftp://files.example,https://x.example/path" });
    let error: unknown;
    try {
      readGatewayConfig(env);
      env.done();
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join("\n");
    for (const name of ["PORT", "BOOKINGS_URL", '"ftp://files.example"', '"https://x.example/path"']) expect(problems).toContain(name);
    expect(problems).not.toContain("ok.example");
  });
});

// --- REST mapping rules, on a contract made for the purpose ---------------------------

/** A ProbeService whose one response echoes the request the transcoder built. */
function probeService(): DescService {
  const field = (name: string, number: number, type: Type, extra: object = {}) => ({
    name,
    number,
    type,
    label: Label.OPTIONAL,
    jsonName: name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()),
    ...extra,
  });
  const options = (rule: MessageInitShape<typeof HttpRuleSchema>) => {
    const opts = create(MethodOptionsSchema);
    setExtension(opts, httpOption, create(HttpRuleSchema, rule));
    return opts;
  };
  const method = (name: string, rule: MessageInitShape<typeof HttpRuleSchema>) => ({ name, inputType: ".probe.v1.ProbeRequest", outputType: ".probe.v1.ProbeResponse", options: options(rule) });
  const file = create(FileDescriptorProtoSchema, {
    name: "probe/v1/probe.proto",
    package: "probe.v1",
    syntax: "proto3",
    dependency: ["google/protobuf/timestamp.proto"],
    messageType: [
      { name: "Filter", field: [field("min_seats", 1, Type.INT32), field("open_only", 2, Type.BOOL), field("state", 3, Type.ENUM, { typeName: ".probe.v1.State" })] },
      {
        name: "ProbeRequest",
        field: [
          field("id", 1, Type.STRING),
          field("filter", 2, Type.MESSAGE, { typeName: ".probe.v1.Filter" }),
          field("tags", 3, Type.STRING, { label: Label.REPEATED }),
          field("since", 4, Type.MESSAGE, { typeName: ".google.protobuf.Timestamp" }),
          field("path", 5, Type.STRING),
          field("count", 6, Type.INT64),
        ],
      },
      { name: "ProbeResponse", field: [field("request", 1, Type.MESSAGE, { typeName: ".probe.v1.ProbeRequest" })] },
    ],
    enumType: [{ name: "State", value: [{ name: "STATE_UNSPECIFIED", number: 0 }, { name: "STATE_OPEN", number: 1 }] }],
    service: [
      {
        name: "ProbeService",
        method: [
          method("Get", {
            pattern: { case: "get", value: "/v1/probes/{id}" },
            additionalBindings: [create(HttpRuleSchema, { pattern: { case: "get", value: "/v1/seats/{filter.min_seats}/probes/{id}" } })],
          }),
          method("List", { pattern: { case: "get", value: "/v1/probes" } }),
          method("Create", { pattern: { case: "post", value: "/v1/probes" }, body: "filter" }),
          method("Touch", { pattern: { case: "post", value: "/v1/probes/{id}:touch" }, body: "*" }),
          method("Purge", { pattern: { case: "custom", value: create(CustomHttpPatternSchema, { kind: "PURGE", path: "/v1/probes/{id}" }) } }),
          method("Files", { pattern: { case: "get", value: "/v1/files/{path=**}" } }),
        ],
      },
    ],
  });
  const registry = createFileRegistry(file, (name) => (name === "google/protobuf/timestamp.proto" ? file_google_protobuf_timestamp : undefined));
  return registry.getService("probe.v1.ProbeService")!;
}

describe("REST transcoding rules", () => {
  let base: string;
  let server: http.Server;
  beforeAll(async () => {
    const service = probeService();
    // The forwarder's place: answer with the request message as built.
    const echo = {
      unary: async (method: { name: string; output: DescMessage }, input: object) =>
        create(method.output, { request: { ...input, path: `${method.name}:${(input as { path: string }).path}` } } as never),
    };
    const rest = new RestTranscoder(restRoutes([service]), echo as unknown as Forwarder, { maxRequestBytes: 1024, maxDeadlineMs: 10_000 });
    server = http.createServer((req, res) => void rest.handle(req, res, { route: "", protocol: "" }));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => server?.close());

  const call = async (method: string, pathAndQuery: string, body?: unknown) => {
    const res = await fetch(base + pathAndQuery, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json()) as JsonObject;
    return { status: res.status, request: json.request as JsonObject | undefined, error: json.request ? undefined : json };
  };

  it("maps path variables, nested ones and custom verbs and methods", async () => {
    expect(await call("GET", "/v1/probes/a%20b")).toMatchObject({ status: 200, request: { id: "a b", path: "Get:" } });
    expect(await call("GET", "/v1/seats/7/probes/p1")).toMatchObject({ status: 200, request: { id: "p1", filter: { minSeats: 7 }, path: "Get:" } });
    expect(await call("POST", "/v1/probes/p2:touch", { tags: ["x"] })).toMatchObject({ status: 200, request: { id: "p2", tags: ["x"], path: "Touch:" } });
    expect(await call("PURGE", "/v1/probes/p3")).toMatchObject({ status: 200, request: { id: "p3", path: "Purge:" } });
    expect(await call("GET", "/v1/files/a/b/c.txt")).toMatchObject({ status: 200, request: { path: "Files:a/b/c.txt" } });
    expect((await call("GET", "/v1/seats/many/probes/p1")).error).toMatchObject({ code: Code.InvalidArgument });
    expect((await call("GET", "/v1/probes/")).status).toBe(404);
    expect((await call("GET", "/v1/probes/p1:touch")).request).toMatchObject({ id: "p1:touch" }); // no verb on Get
  });

  it("maps query parameters: nested with dots, repeated by repetition, bools, enums, timestamps, int64", async () => {
    const since = "2030-01-02T03:04:05Z";
    const res = await call("GET", `/v1/probes?filter.min_seats=3&filter.openOnly=true&filter.state=STATE_OPEN&tags=a&tags=b&since=${since}&count=9007199254740993`);
    expect(res).toMatchObject({
      status: 200,
      request: { filter: { minSeats: 3, openOnly: true, state: "STATE_OPEN" }, tags: ["a", "b"], since, count: "9007199254740993" },
    });
    expect((await call("GET", "/v1/probes?filter.state=1")).request).toMatchObject({ filter: { state: "STATE_OPEN" } });
  });

  it("refuses query parameters that are unknown, repeated for a single field, malformed or bound elsewhere", async () => {
    for (const bad of [
      "/v1/probes?nope=1",
      "/v1/probes?filter.nope=1",
      "/v1/probes?id=a&id=b",
      "/v1/probes?filter.open_only=yes",
      "/v1/probes?filter=x",
      "/v1/probes?since=later",
      "/v1/probes/p1?id=other",
    ]) {
      expect({ bad, ...(await call("GET", bad)).error }).toMatchObject({ bad, code: Code.InvalidArgument });
    }
    expect((await call("POST", "/v1/probes/p2:touch?tags=x", {})).error).toMatchObject({ code: Code.InvalidArgument });
  });

  it("fills a named body field, or the whole request from body \"*\" with the path winning", async () => {
    expect(await call("POST", "/v1/probes?id=q1", { minSeats: 2 })).toMatchObject({ status: 200, request: { id: "q1", filter: { minSeats: 2 } } });
    expect((await call("POST", "/v1/probes", { minSeats: 2, unknown: 1 })).error).toMatchObject({ code: Code.InvalidArgument });
    expect((await call("POST", "/v1/probes/from-path:touch", { id: "from-body", count: "5" })).request).toMatchObject({ id: "from-path", count: "5" });
    expect((await call("POST", "/v1/probes/p:touch", [1, 2])).error).toMatchObject({ code: Code.InvalidArgument });
    const big = await fetch(`${base}/v1/probes/p:touch`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ tags: ["x".repeat(2_000)] }) });
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ code: Code.ResourceExhausted });
  });

  it("writes zero values out, and timestamps in RFC 3339", async () => {
    const res = await call("GET", "/v1/probes/z?since=1970-01-01T00:00:00Z");
    expect(res.request).toEqual({ id: "z", filter: undefined, tags: [], since: "1970-01-01T00:00:00Z", path: "Get:", count: "0" });
  });
});

describe("path templates", () => {
  it("parses google.api.http templates and matches paths", () => {
    const t = parsePathTemplate("/v1/{name=projects/*/locations/*}/events/{id}:cancel");
    expect(matchPath(t, "/v1/projects/p/locations/l/events/e1:cancel")).toEqual(new Map([["name", "projects/p/locations/l"], ["id", "e1"]]));
    expect(matchPath(t, "/v1/projects/p/locations/l/events/e1")).toBeUndefined();
    expect(matchPath(t, "/v1/projects/p/zones/l/events/e1:cancel")).toBeUndefined();
    expect(matchPath(parsePathTemplate("/v1/files/{path=**}"), "/v1/files/a/b")).toEqual(new Map([["path", "a/b"]]));
    expect(matchPath(parsePathTemplate("/v1/events"), "/v1/events/")).toBeUndefined();
    for (const bad of ["v1/x", "/v1/{id", "/v1/{id}x", "/v1/**/x", "/v1//x", "/v1/{9}"]) expect(() => parsePathTemplate(bad)).toThrow(/invalid path template/);
  });
});
