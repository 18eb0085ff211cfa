// The gateway's unary fast path (unary-fast-path.ts) answers exactly as
// connect-node did: every request below goes to two gateways in front of
// the same upstream, one with the fast path and one without, and the
// answers (status, headers, body bytes), the metrics and the access log
// lines must be the same; the fast path's counters prove which requests
// it answered itself and which it handed to connect-node.
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport as nodeConnect, createGrpcWebTransport as nodeGrpcWeb } from "@connectrpc/connect-node";
import { createConnectTransport as webConnect, createGrpcWebTransport as webGrpcWeb } from "@connectrpc/connect-web";
import { ErrorInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { EventService, GetEventRequestSchema } from "../gen/myevents/v1/event_service_pb.js";
import { EnvReader, readRuntimeConfig } from "../services/runtime/config.js";
import { createLogger } from "../services/runtime/logger.js";
import { serve, startService, type RunningService } from "../services/runtime/server.js";
import { authHeader } from "../services/runtime/auth/testing.js";
import { encodeEnvelope } from "../services/runtime/grpc-wire.js";
import type { RunningGateway } from "./app.js";
import { closedPort, failure, LOCAL, silent, startTestGateway } from "./test-support.js";

const GET_EVENT = "/myevents.v1.EventService/GetEvent";
const LIST_EVENTS = "/myevents.v1.EventService/ListEvents"; // not implemented by the stand-in
const CREATE_EVENT = "/myevents.v1.EventService/CreateEvent"; // POST only
const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/** What reached the stand-in upstream. */
const seen: Array<Record<string, string>> = [];

/** EventService.GetEvent whose answer depends on the id asked for. */
async function startStandIn(): Promise<RunningService> {
  return startService({
    name: "stand-in",
    config: readRuntimeConfig(new EnvReader(LOCAL), { port: 0, adminPort: 0 }),
    logger: silent,
    services: [
      serve(EventService, {
        async getEvent(req, ctx) {
          seen.push(Object.fromEntries(ctx.requestHeader));
          switch (req.id) {
            case "missing": {
              const error = new ConnectError(`event ${req.id} not found: ünïcode % encoded`, Code.NotFound);
              error.details = [{ desc: ErrorInfoSchema, value: { reason: "EVENT_NOT_FOUND", domain: "myevents", metadata: { id: req.id } } }];
              throw error;
            }
            case "slow":
              await new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason)));
              break;
            case "big":
              return { event: { id: req.id, name: "x".repeat(3_000) } };
          }
          return { event: { id: req.id, name: "Concert", locationId: "l1", capacity: 100, seatsAvailable: 42 } };
        },
      }),
    ],
  });
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string; // base64: byte for byte
}

interface RawRequest {
  method?: "GET" | "POST";
  path: string;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  /** HTTP/1.1 only: send the body chunked (no Content-Length), as connect-node's HTTP/1.1 client does. */
  chunked?: boolean;
  http2?: boolean;
}

// Per connection or per response, not part of the answer.
const HOP_HEADERS = new Set(["date", "connection", "keep-alive", "content-length", "transfer-encoding"]);

function answerOf(status: number, headers: Record<string, string | string[] | undefined>, chunks: Buffer[]): Answer {
  const kept: Answer["headers"] = {};
  for (const [k, v] of Object.entries(headers)) if (!k.startsWith(":") && !HOP_HEADERS.has(k)) kept[k] = v;
  return { status, headers: kept, body: Buffer.concat(chunks).toString("base64") };
}

async function raw(base: string, r: RawRequest): Promise<Answer> {
  const url = new URL(r.path, base);
  const body = r.body === undefined ? undefined : Buffer.from(r.body);
  if (r.http2) {
    const session = http2.connect(url.origin);
    try {
      return await new Promise<Answer>((resolve, reject) => {
        const stream = session.request({ ":method": r.method ?? "POST", ":path": url.pathname + url.search, ...r.headers, ...(body ? { "content-length": String(body.length) } : {}) });
        const chunks: Buffer[] = [];
        let head: http2.IncomingHttpHeaders = {};
        stream.on("response", (h) => (head = h));
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("end", () => resolve(answerOf(Number(head[":status"]), head, chunks)));
        stream.on("error", reject);
        stream.end(body);
      });
    } finally {
      session.close();
    }
  }
  return new Promise<Answer>((resolve, reject) => {
    const headers: Record<string, string> = { ...r.headers };
    if (body && !r.chunked) headers["content-length"] = String(body.length);
    const req = http.request(url, { method: r.method ?? "POST", headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve(answerOf(res.statusCode!, res.headers, chunks)));
      res.on("error", reject);
    });
    req.on("error", reject);
    if (body && r.chunked) {
      // Two writes, so the body really arrives in chunks.
      req.write(body.subarray(0, 1));
      req.end(body.subarray(1));
    } else req.end(body);
  });
}

const json = (id: string) => toJsonString(GetEventRequestSchema, create(GetEventRequestSchema, { id }));
const proto = (id: string) => toBinary(GetEventRequestSchema, create(GetEventRequestSchema, { id }));
const CONNECT_JSON = { "content-type": "application/json", "connect-protocol-version": "1" };
const CONNECT_PROTO = { "content-type": "application/proto", "connect-protocol-version": "1" };
const GRPC_WEB = { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" };

/** Gateways with and without the fast path, their counters and logs. */
async function pair(env: Record<string, string>) {
  const logs = { fast: [] as string[], slow: [] as string[] };
  const fast = await startTestGateway(env, { logger: createLogger("info", {}, (line) => logs.fast.push(line)) });
  const slow = await startTestGateway(env, { logger: createLogger("info", {}, (line) => logs.slow.push(line)), fastPath: false });
  expect(slow.gateway.unaryFastPath).toBeUndefined();
  const counts = () => ({ ...(fast.gateway as RunningGateway).unaryFastPath!.counts });
  return {
    fast,
    slow,
    logs,
    counts,
    /** The same request to both; the answers must match. Returns the fast path's answer and what its counters did. */
    async same(r: RawRequest) {
      const before = counts();
      const a = await raw(fast.url, r);
      const after = counts();
      const b = await raw(slow.url, r);
      expect(a, `${r.method ?? "POST"} ${r.path} ${JSON.stringify(r.headers)}`).toEqual(b);
      return { answer: a, answered: after.answered - before.answered, handedOver: after.handedOver - before.handedOver };
    },
    async stop() {
      await fast.gateway.shutdown();
      await slow.gateway.shutdown();
    },
  };
}

/** Counters and the access log, without what differs from run to run (times, trace ids). */
async function observed(g: { admin: string }, logs: string[]) {
  const metrics = (await (await fetch(`${g.admin}/metrics`)).text())
    .split("\n")
    .filter((l) => /^(gateway_requests_total|gateway_rate_limited_total|grpc_server_handled_total|grpc_server_started_total|grpc_client_handled_total|grpc_server_msg_sent_total)\{/.test(l))
    // The health monitor's own probes of the upstream run on their own clock.
    .filter((l) => !l.includes('grpc_service="grpc.health.v1.Health"'))
    .sort();
  const lines = logs
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === "rpc" || l.msg === "http")
    .map(({ time, duration_ms, trace_id, span_id, ...rest }) => JSON.stringify(rest))
    .sort();
  return { metrics, lines };
}

let upstream: RunningService;
beforeAll(async () => {
  upstream = await startStandIn();
});
afterAll(async () => {
  await upstream?.shutdown();
});

describe("the unary fast path answers as connect-node does", () => {
  let gw: Awaited<ReturnType<typeof pair>>;
  beforeAll(async () => {
    gw = await pair({ EVENTS_URL: `http://127.0.0.1:${upstream.port}`, BOOKINGS_URL: "none", NOTIFICATIONS_URL: "none", MAX_REQUEST_BYTES: "4096" });
  });
  afterAll(() => gw?.stop());

  it("Connect JSON and binary, POST (sized and chunked) and GET, over HTTP/1.1 and HTTP/2", async () => {
    const requests: RawRequest[] = [
      { path: GET_EVENT, headers: CONNECT_JSON, body: json("e1") },
      { path: GET_EVENT, headers: CONNECT_JSON, body: json("e1"), chunked: true },
      { path: GET_EVENT, headers: { "content-type": "application/json; charset=utf-8" }, body: json("e1") },
      { path: GET_EVENT, headers: CONNECT_PROTO, body: proto("e1") },
      { path: GET_EVENT, headers: CONNECT_PROTO, body: proto("e1"), chunked: true },
      { path: GET_EVENT, headers: CONNECT_JSON, body: json("e1"), http2: true },
      { path: GET_EVENT, headers: CONNECT_PROTO, body: proto("e1"), http2: true },
      { method: "GET", path: `${GET_EVENT}?connect=v1&encoding=json&message=${encodeURIComponent(json("e1"))}` },
      { method: "GET", path: `${GET_EVENT}?connect=v1&encoding=proto&base64=1&message=${Buffer.from(proto("e1")).toString("base64url")}` },
      { method: "GET", path: `${GET_EVENT}?encoding=json&message=${encodeURIComponent(json("e1"))}`, http2: true },
    ];
    for (const r of requests) {
      const { answer, answered } = await gw.same(r);
      expect(answer.status).toBe(200);
      expect(answered).toBe(1);
    }
  });

  it("gRPC-Web binary: the message and its trailer frame, with or without response compression offered", async () => {
    for (const r of [
      { path: GET_EVENT, headers: GRPC_WEB, body: encodeEnvelope(proto("e1")) },
      { path: GET_EVENT, headers: { ...GRPC_WEB, "content-type": "application/grpc-web" }, body: encodeEnvelope(proto("e1")) },
      { path: GET_EVENT, headers: { ...GRPC_WEB, "grpc-accept-encoding": "gzip,br" }, body: encodeEnvelope(proto("e1")), chunked: true },
      { path: GET_EVENT, headers: GRPC_WEB, body: encodeEnvelope(proto("e1")), http2: true },
    ] satisfies RawRequest[]) {
      const { answer, answered } = await gw.same(r);
      expect(answer.status).toBe(200);
      const body = Buffer.from(answer.body, "base64");
      expect(body.subarray(body.length - 21).toString("latin1")).toBe("\x80\x00\x00\x00\x10grpc-status: 0\r\n");
      expect(answered).toBe(1);
    }
  });

  it("compresses large responses when the client accepts it, as connect-node does", async () => {
    for (const r of [
      { path: GET_EVENT, headers: { ...CONNECT_JSON, "accept-encoding": "gzip, deflate, br" }, body: json("big") },
      { path: GET_EVENT, headers: { ...CONNECT_PROTO, "accept-encoding": "br" }, body: proto("big") },
      { path: GET_EVENT, headers: { ...GRPC_WEB, "grpc-accept-encoding": "gzip" }, body: encodeEnvelope(proto("big")) },
    ] satisfies RawRequest[]) {
      const { answer, answered } = await gw.same(r);
      expect(answered).toBe(1);
      expect(answer.headers["content-encoding"] ?? answer.headers["grpc-encoding"]).toMatch(/^(gzip|br)$/);
    }
  });

  it("passes upstream errors on with code, message and details: Connect error JSON with its HTTP status, gRPC-Web trailers", async () => {
    const cases: Array<[RawRequest, number]> = [
      [{ path: GET_EVENT, headers: CONNECT_JSON, body: json("missing") }, 404],
      [{ path: GET_EVENT, headers: CONNECT_PROTO, body: proto("missing"), http2: true }, 404],
      [{ method: "GET", path: `${GET_EVENT}?encoding=json&message=${encodeURIComponent(json("missing"))}` }, 404],
      [{ path: GET_EVENT, headers: GRPC_WEB, body: encodeEnvelope(proto("missing")) }, 200],
      // The upstream's validation: InvalidArgument with a BadRequest detail.
      [{ path: GET_EVENT, headers: CONNECT_JSON, body: json("") }, 400],
      [{ path: GET_EVENT, headers: GRPC_WEB, body: encodeEnvelope(proto("")) }, 200],
      // A method the upstream does not implement.
      [{ path: LIST_EVENTS, headers: CONNECT_JSON, body: "{}" }, 501],
      [{ path: LIST_EVENTS, headers: GRPC_WEB, body: encodeEnvelope(new Uint8Array()) }, 200],
    ];
    for (const [r, status] of cases) {
      const { answer, answered } = await gw.same(r);
      expect(answer.status).toBe(status);
      expect(answered).toBe(1);
    }
    const details = await gw.same({ path: GET_EVENT, headers: CONNECT_JSON, body: json("missing") });
    expect(JSON.parse(Buffer.from(details.answer.body, "base64").toString())).toMatchObject({
      code: "not_found",
      message: "event missing not found: ünïcode % encoded",
      details: [{ type: "google.rpc.ErrorInfo" }],
    });
  });

  it("hands malformed input to connect-node with the bytes it read: InvalidArgument (never Internal) or connect-node's own answer", async () => {
    const handedOver: RawRequest[] = [
      { path: GET_EVENT, headers: CONNECT_JSON, body: "{not json" },
      { path: GET_EVENT, headers: CONNECT_JSON, body: '{"nope": 1}' },
      { path: GET_EVENT, headers: CONNECT_JSON, body: "" },
      { path: GET_EVENT, headers: CONNECT_JSON, body: "{not json", chunked: true },
      { path: GET_EVENT, headers: CONNECT_PROTO, body: Buffer.from([0xff, 0xff, 0xff]) },
      { path: GET_EVENT, headers: GRPC_WEB, body: Buffer.from([0, 0, 0]) },
      { path: GET_EVENT, headers: GRPC_WEB, body: encodeEnvelope(proto("e1")).subarray(0, 7) },
      { path: GET_EVENT, headers: GRPC_WEB, body: encodeEnvelope(Buffer.from([0xff, 0xff])) },
      { path: GET_EVENT, headers: GRPC_WEB, body: encodeEnvelope(gzipSync(proto("e1")), 1) },
      { path: GET_EVENT, headers: GRPC_WEB, body: Buffer.concat([encodeEnvelope(proto("e1")), encodeEnvelope(proto("e2"))]) },
      { path: GET_EVENT, headers: GRPC_WEB, body: new Uint8Array() },
      { method: "GET", path: `${GET_EVENT}?encoding=json&message=${encodeURIComponent("{bad")}` },
      // Over MAX_REQUEST_BYTES while arriving (no Content-Length to tell before).
      { path: GET_EVENT, headers: CONNECT_JSON, body: JSON.stringify({ id: "x".repeat(5_000) }), chunked: true },
      { path: GET_EVENT, headers: GRPC_WEB, body: encodeEnvelope(proto("y".repeat(5_000))), chunked: true },
    ];
    for (const r of handedOver) {
      const { answer, answered, handedOver } = await gw.same(r);
      expect([answered, handedOver]).toEqual([0, 1]);
      expect(answer.status === 200 ? answer.headers["grpc-status"] ?? "trailer" : answer.status).not.toBe(500);
    }
    // Left to connect-node before any byte is read.
    const untouched: RawRequest[] = [
      { path: GET_EVENT, headers: { ...CONNECT_JSON, "content-encoding": "gzip" }, body: gzipSync(json("e1")) },
      { path: GET_EVENT, headers: { ...GRPC_WEB, "grpc-encoding": "gzip" }, body: encodeEnvelope(gzipSync(proto("e1")), 1) },
      { path: GET_EVENT, headers: { "content-type": "text/plain" }, body: json("e1") },
      { path: GET_EVENT, headers: { "content-type": "application/grpc-web-text" }, body: encodeEnvelope(proto("e1")).toString("base64") },
      { path: GET_EVENT, headers: { ...CONNECT_JSON, "connect-timeout-ms": "soon" }, body: json("e1") },
      { path: GET_EVENT, headers: { ...GRPC_WEB, "grpc-timeout": "1fortnight" }, body: encodeEnvelope(proto("e1")) },
      { path: GET_EVENT, headers: CONNECT_JSON, body: JSON.stringify({ id: "x".repeat(5_000) }) },
      { method: "GET", path: `${GET_EVENT}?encoding=json&compression=gzip&message=x` },
      { method: "GET", path: `${GET_EVENT}?encoding=json&base64=1&message=${encodeURIComponent("*not base64*")}` },
      { method: "GET", path: `${GET_EVENT}?encoding=yaml&message=x` },
      { method: "GET", path: `${CREATE_EVENT}?encoding=json&message=${encodeURIComponent("{}")}` },
    ];
    for (const r of untouched) {
      const { answered, handedOver } = await gw.same(r);
      expect([answered, handedOver]).toEqual([0, 0]);
    }
  });

  it("honours connect-timeout-ms and grpc-timeout: DeadlineExceeded, and the upstream call is cancelled", async () => {
    for (const r of [
      { path: GET_EVENT, headers: { ...CONNECT_JSON, "connect-timeout-ms": "100" }, body: json("slow") },
      { path: GET_EVENT, headers: { ...GRPC_WEB, "grpc-timeout": "100m" }, body: encodeEnvelope(proto("slow")) },
    ] satisfies RawRequest[]) {
      const { answer, answered } = await gw.same(r);
      expect(answered).toBe(1);
      expect(answer.status === 504 || answer.headers["content-type"] === "application/grpc-web+proto").toBe(true);
      expect(Buffer.from(answer.body, "base64").toString()).toMatch(/deadline_exceeded|grpc-status: 4\r\n/);
    }
    // The caller's deadline reaches the upstream as grpc-timeout.
    seen.length = 0;
    await gw.same({ path: GET_EVENT, headers: { ...CONNECT_JSON, "connect-timeout-ms": "5000" }, body: json("e1") });
    expect(Number(seen[0]!["grpc-timeout"]?.replace(/m$/, ""))).toBeGreaterThan(4_000);
    expect(Number(seen[0]!["grpc-timeout"]?.replace(/m$/, ""))).toBeLessThanOrEqual(5_000);
  });

  it("forwards authorization and the caller's trace (a new span of the same trace), nothing else", async () => {
    const auth = await authHeader("alice");
    seen.length = 0;
    await gw.same({ path: GET_EVENT, headers: { ...CONNECT_JSON, ...auth, traceparent: TRACEPARENT, cookie: "secret=1", "x-internal": "1" }, body: json("e1") });
    await gw.same({ path: GET_EVENT, headers: { ...GRPC_WEB, ...auth, traceparent: TRACEPARENT }, body: encodeEnvelope(proto("e1")) });
    expect(seen).toHaveLength(4);
    for (const headers of seen) {
      expect(headers.authorization).toBe(auth.authorization);
      expect(headers.traceparent).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
      expect(headers.traceparent).not.toContain("00f067aa0ba902b7");
      expect(headers.cookie).toBeUndefined();
      expect(headers["x-internal"]).toBeUndefined();
    }
  });

  it("marks answers for allowed CORS origins as connect-node's path does", async () => {
    const { answered, answer } = await gw.same({ path: GET_EVENT, headers: { ...CONNECT_JSON, origin: "http://localhost:5173" }, body: json("e1") });
    expect(answered).toBe(1);
    expect(answer.headers["access-control-allow-origin"]).toBe("http://localhost:5173");
  });

  it("counts and logs every call as connect-node's path does (same metrics, same access log lines)", async () => {
    const fast = await observed(gw.fast, gw.logs.fast);
    const slow = await observed(gw.slow, gw.logs.slow);
    expect(fast.metrics.length).toBeGreaterThan(5);
    expect(fast.metrics).toEqual(slow.metrics);
    expect(fast.lines).toEqual(slow.lines);
    expect(fast.metrics.join("\n")).toMatch(/gateway_requests_total\{[^}]*route="\/myevents\.v1\.EventService\/GetEvent"[^}]*protocol="grpc-web"[^}]*code="OK"[^}]*\} \d+/);
  });
});

describe("the fast path with connect's own clients", () => {
  let gw: Awaited<ReturnType<typeof startTestGateway>>;
  beforeAll(async () => {
    gw = await startTestGateway({ EVENTS_URL: `http://127.0.0.1:${upstream.port}`, BOOKINGS_URL: "none", NOTIFICATIONS_URL: "none" });
  });
  afterAll(() => gw?.gateway.shutdown());

  const transports: Record<string, (baseUrl: string) => Transport> = {
    "connect-web Connect JSON (fetch)": (baseUrl) => webConnect({ baseUrl }),
    "connect-web Connect JSON GET (fetch)": (baseUrl) => webConnect({ baseUrl, useHttpGet: true }),
    "connect-web Connect binary (fetch)": (baseUrl) => webConnect({ baseUrl, useBinaryFormat: true }),
    "connect-web gRPC-Web (fetch)": (baseUrl) => webGrpcWeb({ baseUrl }),
    "connect-node Connect JSON (HTTP/1.1)": (baseUrl) => nodeConnect({ baseUrl, httpVersion: "1.1" }),
    "connect-node Connect binary (HTTP/2)": (baseUrl) => nodeConnect({ baseUrl, httpVersion: "2", useBinaryFormat: true }),
    "connect-node gRPC-Web (HTTP/1.1)": (baseUrl) => nodeGrpcWeb({ baseUrl, httpVersion: "1.1" }),
    "connect-node gRPC-Web (HTTP/2)": (baseUrl) => nodeGrpcWeb({ baseUrl, httpVersion: "2" }),
  };
  for (const [name, transport] of Object.entries(transports)) {
    it(name, async () => {
      const client = createClient(EventService, transport(gw.url));
      const before = gw.gateway.unaryFastPath!.counts.answered;
      expect((await client.getEvent({ id: "e1" })).event).toMatchObject({ id: "e1", name: "Concert", seatsAvailable: 42 });
      expect((await client.getEvent({ id: "big" })).event?.name).toHaveLength(3_000);
      const missing = await failure(client.getEvent({ id: "missing" }));
      expect([missing.code, missing.rawMessage]).toEqual([Code.NotFound, "event missing not found: ünïcode % encoded"]);
      expect(missing.findDetails(ErrorInfoSchema)).toMatchObject([{ reason: "EVENT_NOT_FOUND", metadata: { id: "missing" } }]);
      const late = await failure(client.getEvent({ id: "slow" }, { timeoutMs: 100 }));
      expect(late.code).toBe(Code.DeadlineExceeded);
      expect(gw.gateway.unaryFastPath!.counts.answered - before).toBe(4);
    });
  }
});

describe("the fast path's refusals", () => {
  it("answers the rate limit's ResourceExhausted (429, Retry-After; gRPC-Web trailers) as connect-node does", async () => {
    const gw = await pair({ EVENTS_URL: `http://127.0.0.1:${upstream.port}`, BOOKINGS_URL: "none", NOTIFICATIONS_URL: "none", RATE_LIMIT_PER_SECOND: "1", RATE_LIMIT_BURST: "1" });
    try {
      await gw.same({ path: GET_EVENT, headers: CONNECT_JSON, body: json("e1") }); // takes the one token
      const connect = await gw.same({ path: GET_EVENT, headers: CONNECT_JSON, body: json("e1") });
      expect([connect.answer.status, connect.answer.headers["retry-after"], connect.answered]).toEqual([429, "1", 1]);
      const web = await gw.same({ path: GET_EVENT, headers: GRPC_WEB, body: encodeEnvelope(proto("e1")) });
      expect(Buffer.from(web.answer.body, "base64").toString()).toMatch(/grpc-status: 8\r\n/);
      const fast = await observed(gw.fast, gw.logs.fast);
      expect(fast).toEqual(await observed(gw.slow, gw.logs.slow));
      expect(fast.metrics.join("\n")).toMatch(/gateway_rate_limited_total\{[^}]*protocol="grpc-web"[^}]*\} 1/);
    } finally {
      await gw.stop();
    }
  });

  it("answers Unavailable when the upstream cannot be reached", async () => {
    const gw = await pair({ EVENTS_URL: `http://127.0.0.1:${await closedPort()}`, BOOKINGS_URL: "none", NOTIFICATIONS_URL: "none" });
    try {
      const connect = await gw.same({ path: GET_EVENT, headers: CONNECT_JSON, body: json("e1") });
      expect([connect.answer.status, connect.answered]).toEqual([503, 1]);
      const web = await gw.same({ path: GET_EVENT, headers: GRPC_WEB, body: encodeEnvelope(proto("e1")) });
      expect(Buffer.from(web.answer.body, "base64").toString()).toMatch(/grpc-status: 14\r\n/);
    } finally {
      await gw.stop();
    }
  });

  it("answers an RPC without an authority (HTTP/1.0, no Host) with 400 instead of ending the process", async () => {
    const gw = await startTestGateway({ EVENTS_URL: `http://127.0.0.1:${upstream.port}`, BOOKINGS_URL: "none", NOTIFICATIONS_URL: "none" });
    try {
      const body = json("e1");
      const reply = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(gw.gateway.port, "127.0.0.1", () =>
          socket.end(`POST ${GET_EVENT} HTTP/1.0\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`),
        );
        let text = "";
        socket.on("data", (d: Buffer) => (text += d.toString()));
        socket.on("end", () => resolve(text));
        socket.on("error", reject);
      });
      expect(reply).toMatch(/^HTTP\/1\.[01] 400 /);
      expect(gw.gateway.unaryFastPath!.counts.answered).toBe(0);
      const client = createClient(EventService, nodeConnect({ baseUrl: gw.url, httpVersion: "1.1" }));
      expect((await client.getEvent({ id: "e1" })).event?.id).toBe("e1");
    } finally {
      await gw.gateway.shutdown();
    }
  });

  it("answers Unimplemented for a service the gateway has no upstream for", async () => {
    const gw = await pair({ EVENTS_URL: "none", BOOKINGS_URL: "none", NOTIFICATIONS_URL: "none" });
    try {
      const connect = await gw.same({ path: GET_EVENT, headers: CONNECT_JSON, body: json("e1") });
      expect([connect.answer.status, connect.answered]).toEqual([501, 1]);
    } finally {
      await gw.stop();
    }
  });
});
