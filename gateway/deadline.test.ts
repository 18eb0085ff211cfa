// A caller's deadline passing while the gateway waits for a slow upstream:
// what the gateway's access log and metrics record must be the code the
// caller received (DeadlineExceeded), on every path through the gateway.
import http from "node:http";
import http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import { Code, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { EventService, GetEventRequestSchema } from "../gen/myevents/v1/event_service_pb.js";
import { NotificationService, SubscribeRequestSchema } from "../gen/myevents/v1/notification_service_pb.js";
import { EnvReader, readRuntimeConfig } from "../services/runtime/config.js";
import { encodeEnvelope } from "../services/runtime/grpc-wire.js";
import { createLogger } from "../services/runtime/logger.js";
import { serve, startService, type RunningService } from "../services/runtime/server.js";
import { eventually, failure, LOCAL, silent, sleep, startTestGateway } from "./test-support.js";
import { eventuallyLoggedRpc } from "../test/support/logs.js";

/** gRPC status 0: connect has no name for it. */
const OK = 0 as Code;
const GET_EVENT = "/myevents.v1.EventService/GetEvent";
const SUBSCRIBE = "/myevents.v1.NotificationService/Subscribe";

/** GetEvent and Subscribe that answer late: "slow" until the call is cancelled, "deaf" after 600 ms whatever happens. */
async function startSlowUpstream(): Promise<RunningService> {
  const untilAborted = (signal: AbortSignal) => new Promise<never>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
  return startService({
    name: "slow",
    config: readRuntimeConfig(new EnvReader(LOCAL), { port: 0, adminPort: 0 }),
    logger: silent,
    services: [
      serve(EventService, {
        async getEvent(req, ctx) {
          if (req.id === "slow") await untilAborted(ctx.signal);
          else await sleep(600);
          return { event: { id: req.id, name: "late" } };
        },
      }),
      serve(NotificationService, {
        async *subscribe(req, ctx) {
          if (req.eventIds[0] === "slow") await untilAborted(ctx.signal);
          else await sleep(600);
        },
      }),
    ],
  });
}

interface Raw {
  path: string;
  headers: Record<string, string>;
  body: Uint8Array;
  http2?: boolean;
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  trailers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One request with no deadline timer of its own: the client waits for the gateway's answer. */
async function raw(base: string, r: Raw): Promise<Reply> {
  const url = new URL(r.path, base);
  if (r.http2) {
    const session = http2.connect(url.origin);
    try {
      return await new Promise<Reply>((resolve, reject) => {
        const stream = session.request({ ":method": "POST", ":path": url.pathname, ...r.headers });
        const chunks: Buffer[] = [];
        let head: http2.IncomingHttpHeaders = {};
        let trailers: http2.IncomingHttpHeaders = {};
        stream.on("response", (h) => (head = h));
        stream.on("trailers", (t) => (trailers = t));
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("end", () => resolve({ status: Number(head[":status"]), headers: head, trailers, body: Buffer.concat(chunks) }));
        stream.on("error", reject);
        stream.end(r.body);
      });
    } finally {
      session.close();
    }
  }
  return new Promise<Reply>((resolve, reject) => {
    const req = http.request(url, { method: "POST", headers: { ...r.headers, "content-length": String(r.body.length) }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, trailers: {}, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(r.body);
  });
}

/** Connect's error code names ("deadline_exceeded") to codes. */
function connectCode(name: unknown): Code {
  const key = Object.keys(Code).find((k) => k.replace(/[A-Z]/g, (c, i: number) => (i ? "_" : "") + c.toLowerCase()) === name);
  return key === undefined ? Code.Unknown : (Code[key as keyof typeof Code] as Code);
}

/** The envelopes of an enveloped body (gRPC-Web, Connect streaming). */
function envelopes(body: Buffer): Array<{ flags: number; data: Buffer }> {
  const out = [];
  for (let at = 0; at + 5 <= body.length; ) {
    const length = body.readUInt32BE(at + 1);
    out.push({ flags: body[at]!, data: body.subarray(at + 5, at + 5 + length) });
    at += 5 + length;
  }
  return out;
}

/** The code the client received, in its protocol's form. */
type Form = "connect-unary" | "connect-stream" | "grpc-web" | "grpc";
function receivedCode(form: Form, reply: Reply): Code {
  switch (form) {
    case "connect-unary":
      return reply.status === 200 ? OK : connectCode((JSON.parse(reply.body.toString()) as { code: string }).code);
    case "connect-stream": {
      const end = envelopes(reply.body).find((e) => e.flags & 2);
      const error = end && (JSON.parse(end.data.toString()) as { error?: { code: string } }).error;
      return error ? connectCode(error.code) : OK;
    }
    case "grpc-web": {
      const trailer = envelopes(reply.body).find((e) => e.flags & 0x80)?.data.toString() ?? "";
      const status = /grpc-status: ?(\d+)/.exec(trailer)?.[1] ?? reply.headers["grpc-status"];
      return Number(status);
    }
    case "grpc":
      return Number(reply.trailers["grpc-status"] ?? reply.headers["grpc-status"]);
  }
}

const json = (id: string) => Buffer.from(toJsonString(GetEventRequestSchema, create(GetEventRequestSchema, { id })));
const proto = (id: string) => toBinary(GetEventRequestSchema, create(GetEventRequestSchema, { id }));
const subscribeJson = (id: string) => Buffer.from(toJsonString(SubscribeRequestSchema, create(SubscribeRequestSchema, { eventIds: [id] })));
const subscribeProto = (id: string) => toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, { eventIds: [id] }));

interface Case {
  name: string;
  form: Form;
  request: (id: string) => Raw;
}

const CASES: Case[] = [
  {
    name: "Connect JSON unary",
    form: "connect-unary",
    request: (id) => ({ path: GET_EVENT, headers: { "content-type": "application/json", "connect-protocol-version": "1", "connect-timeout-ms": "150" }, body: json(id) }),
  },
  {
    name: "gRPC-Web unary",
    form: "grpc-web",
    request: (id) => ({ path: GET_EVENT, headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", "grpc-timeout": "150m" }, body: encodeEnvelope(proto(id)) }),
  },
  {
    name: "gRPC unary (HTTP/2)",
    form: "grpc",
    request: (id) => ({ path: GET_EVENT, http2: true, headers: { "content-type": "application/grpc", te: "trailers", "grpc-timeout": "150m" }, body: encodeEnvelope(proto(id)) }),
  },
  {
    name: "Connect JSON server stream",
    form: "connect-stream",
    request: (id) => ({ path: SUBSCRIBE, headers: { "content-type": "application/connect+json", "connect-protocol-version": "1", "connect-timeout-ms": "150" }, body: encodeEnvelope(subscribeJson(id)) }),
  },
  {
    name: "gRPC-Web server stream",
    form: "grpc-web",
    request: (id) => ({ path: SUBSCRIBE, headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", "grpc-timeout": "150m" }, body: encodeEnvelope(subscribeProto(id)) }),
  },
  {
    name: "gRPC server stream (HTTP/2)",
    form: "grpc",
    request: (id) => ({ path: SUBSCRIBE, http2: true, headers: { "content-type": "application/grpc", te: "trailers", "grpc-timeout": "150m" }, body: encodeEnvelope(subscribeProto(id)) }),
  },
];

/** The gateway's counters for one route, by code. */
async function counts(admin: string, route: string) {
  const text = await (await fetch(`${admin}/metrics`)).text();
  const [service, method] = route.slice(1).split("/");
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    let m = /^gateway_requests_total\{route="([^"]+)",protocol="[^"]+",code="(\w+)"[^}]*\} (\d+)/.exec(line);
    if (m && m[1] === route) out[`gateway_requests_total:${m[2]}`] = (out[`gateway_requests_total:${m[2]}`] ?? 0) + Number(m[3]);
    m = /^grpc_server_handled_total\{[^}]*grpc_service="([^"]+)",grpc_method="(\w+)",grpc_code="(\w+)"[^}]*\} (\d+)/.exec(line);
    if (m && m[1] === service && m[2] === method) out[`grpc_server_handled_total:${m[3]}`] = (out[`grpc_server_handled_total:${m[3]}`] ?? 0) + Number(m[4]);
  }
  return out;
}

function delta(before: Record<string, number>, after: Record<string, number>) {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v !== (before[k] ?? 0)) out[k] = v - (before[k] ?? 0);
  return out;
}

let upstream: RunningService;
beforeAll(async () => {
  upstream = await startSlowUpstream();
});
afterAll(async () => {
  await upstream?.shutdown();
});

for (const fastPath of [true, false]) {
  describe(`a caller's deadline passing at a slow upstream (unary fast path ${fastPath ? "on" : "off"})`, () => {
    const logs: string[] = [];
    let gw: Awaited<ReturnType<typeof startTestGateway>>;
    beforeAll(async () => {
      const url = `http://127.0.0.1:${upstream.port}`;
      gw = await startTestGateway({ EVENTS_URL: url, NOTIFICATIONS_URL: url, BOOKINGS_URL: "none" }, { logger: createLogger("info", {}, (line) => logs.push(line)), fastPath });
    });
    afterAll(() => gw?.gateway.shutdown());

    for (const c of CASES) {
      for (const id of ["slow", "deaf"]) {
        it(`${c.name}, upstream ${id === "slow" ? "cancelled at its deadline" : "answering after it"}: logged and counted as the caller's DeadlineExceeded`, async () => {
          const request = c.request(id);
          const before = await counts(gw.admin, request.path);
          logs.length = 0;
          const reply = await raw(gw.url, request);
          const received = receivedCode(c.form, reply);
          const line = await eventually(() => {
            const found = logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => (l.msg === "rpc" || l.msg === "http") && (l.method === request.path || l.route === request.path));
            expect(found).toBeDefined();
            return found!;
          });
          const counted = await eventually(async () => {
            const d = delta(before, await counts(gw.admin, request.path));
            expect(Object.values(d).reduce((a, b) => a + b, 0)).toBe(2);
            return d;
          });
          expect(Code[received]).toBe("DeadlineExceeded");
          expect({ logged: line.code, counted }).toEqual({
            logged: "DeadlineExceeded",
            counted: { "gateway_requests_total:DeadlineExceeded": 1, "grpc_server_handled_total:DeadlineExceeded": 1 },
          });
        });
      }
    }
  });
}

// connect-node's own clients run the deadline themselves: theirs passes a
// little before the gateway's, and they leave (over HTTP/2 with an
// RST_STREAM INTERNAL_ERROR, which connect-node's handler reported as
// Internal; over HTTP/1.1 by closing the connection, recorded as Canceled).
const CLIENTS: Record<string, (baseUrl: string) => Transport> = {
  "gRPC (HTTP/2)": (baseUrl) => createGrpcTransport({ baseUrl }),
  "Connect JSON (HTTP/1.1)": (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "1.1" }),
  "Connect JSON (HTTP/2)": (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "2" }),
  "gRPC-Web (HTTP/1.1)": (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
  "gRPC-Web (HTTP/2)": (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "2" }),
};

for (const fastPath of [true, false]) {
  describe(`clients that run their own deadline, or leave (unary fast path ${fastPath ? "on" : "off"})`, () => {
    const logs: string[] = [];
    let gw: Awaited<ReturnType<typeof startTestGateway>>;
    beforeAll(async () => {
      const url = `http://127.0.0.1:${upstream.port}`;
      gw = await startTestGateway({ EVENTS_URL: url, NOTIFICATIONS_URL: url, BOOKINGS_URL: "none" }, { logger: createLogger("info", {}, (line) => logs.push(line)), fastPath });
    });
    afterAll(() => gw?.gateway.shutdown());

    /** The call's log line and what the gateway's counters added, once both are in. */
    async function recorded(path: string, before: Record<string, number>) {
      const line = await eventuallyLoggedRpc(logs, path);
      const counted = await eventually(async () => {
        const d = delta(before, await counts(gw.admin, path));
        expect(Object.values(d).reduce((a, b) => a + b, 0)).toBe(2);
        return d;
      });
      return { logged: line.code, counted };
    }

    const expected = (code: string) => ({ logged: code, counted: { [`gateway_requests_total:${code}`]: 1, [`grpc_server_handled_total:${code}`]: 1 } });

    for (const [name, transport] of Object.entries(CLIENTS)) {
      for (const kind of ["unary", "server stream"]) {
        const path = kind === "unary" ? GET_EVENT : SUBSCRIBE;
        const call = (t: Transport, options: { timeoutMs?: number; signal?: AbortSignal }) =>
          kind === "unary"
            ? createClient(EventService, t).getEvent({ id: "slow" }, options)
            : (async () => {
                for await (const _ of createClient(NotificationService, t).subscribe({ eventIds: ["slow"] }, options));
              })();

        it(`${name} ${kind}: the client's deadline passing is logged and counted as DeadlineExceeded`, async () => {
          const before = await counts(gw.admin, path);
          logs.length = 0;
          expect((await failure(call(transport(gw.url), { timeoutMs: 300 }))).code).toBe(Code.DeadlineExceeded);
          expect(await recorded(path, before)).toEqual(expected("DeadlineExceeded"));
        });

        it(`${name} ${kind}: a client leaving long before its deadline is logged and counted as Canceled`, async () => {
          const before = await counts(gw.admin, path);
          logs.length = 0;
          const abort = new AbortController();
          setTimeout(() => abort.abort(), 150);
          expect((await failure(call(transport(gw.url), { timeoutMs: 5_000, signal: abort.signal }))).code).toBe(Code.Canceled);
          expect(await recorded(path, before)).toEqual(expected("Canceled"));
        });
      }
    }
  });
}
