// The unary gRPC fast path (grpc-unary.ts), checked against independent
// clients: @grpc/grpc-js with the .proto files, connect-node's gRPC
// transport, and raw node:http2 frames for what no well-behaved client sends.
import http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { EventService, GetEventRequestSchema, GetEventResponseSchema } from "../../gen/myevents/v1/event_service_pb.js";
import { Health } from "../../gen/health/v1/health_pb.js";
import { EnvReader, readRuntimeConfig } from "./config.js";
import { invalidArgument } from "./errors.js";
import { authHeader, TEST_AUTH_ENV } from "./auth/testing.js";
import { callerKey } from "./identity.js";
import { createLogger } from "./logger.js";
import { serve, startService, type RunningService } from "./server.js";
import { encodeEnvelope } from "./grpc-wire.js";
import { eventually } from "../../test/support/eventually.js";
import { PROTO_INCLUDE_DIRS } from "../../test/support/protos.js";

const MAX_REQUEST_BYTES = 2048;
let running: RunningService;
let base: string;
const lines: string[] = [];
/** Why each "wait" call's signal aborted, by request id. */
const aborted = new Map<string, unknown>();

// GetEvent's id picks a behaviour; ListLocations stays unimplemented (connect's default).
const impl = {
  async getEvent(req: { id: string }, ctx: import("@connectrpc/connect").HandlerContext) {
    if (req.id === "details") {
      ctx.responseHeader.set("x-header-before-error", "h");
      ctx.responseTrailer.set("x-trailer-before-error", "t");
      const err = invalidArgument([{ field: "id", description: "is odd" }]);
      err.metadata.set("x-why", "testing");
      throw err;
    }
    if (req.id === "bug") throw new Error("secret internals");
    if (req.id.startsWith("wait")) {
      await new Promise<void>((resolve) =>
        ctx.signal.addEventListener("abort", () => {
          aborted.set(req.id, ctx.signal.reason);
          resolve();
        }),
      );
      return { event: { id: req.id } };
    }
    ctx.responseHeader.set("x-header", "h");
    ctx.responseTrailer.set("x-trailer", "t");
    return { event: { id: req.id, name: `for ${ctx.values.get(callerKey)}`, capacity: ctx.timeoutMs() === undefined ? 0 : 1 } };
  },
};

beforeAll(async () => {
  const env = new EnvReader({ ...TEST_AUTH_ENV, PORT: "0", ADMIN_PORT: "0", HOST: "127.0.0.1", MAX_REQUEST_BYTES: String(MAX_REQUEST_BYTES), MAX_DEADLINE_MS: "10000" });
  const config = readRuntimeConfig(env, { port: 0, adminPort: 0 });
  env.done();
  running = await startService({
    name: "fast",
    config,
    logger: createLogger("info", {}, (line) => lines.push(line)),
    services: [serve(EventService, impl)],
  });
  base = `http://127.0.0.1:${running.port}`;
});
afterAll(() => running?.shutdown());

/** Counts how many calls the fast path answered while `fn` ran. */
async function fastCalls(fn: () => Promise<unknown>): Promise<number> {
  const before = running.fastPath!.calls;
  await fn();
  return running.fastPath!.calls - before;
}

interface RawAnswer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
}

/** One request on a fresh HTTP/2 connection, with whatever bytes and headers a test needs. */
function raw(path: string, body: Buffer, headers: http2.OutgoingHttpHeaders = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(base);
    session.on("error", reject);
    const req = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...headers });
    let head: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on("response", (h) => (head = h));
    req.on("trailers", (t) => (trailers = t));
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      session.close();
      resolve({ status: Number(head[":status"]), headers: head, trailers, body: Buffer.concat(chunks) });
    });
    req.on("error", reject);
    req.end(body);
  });
}


const GET_EVENT = "/myevents.v1.EventService/GetEvent";
const getEvent = (id: string) => encodeEnvelope(toBinary(GetEventRequestSchema, create(GetEventRequestSchema, { id })));
/** grpc-status and grpc-message, from the trailers or a trailers-only response. */
const statusOf = (a: RawAnswer) => {
  const from = a.trailers["grpc-status"] !== undefined ? a.trailers : a.headers;
  return { code: Number(from["grpc-status"]), message: decodeURIComponent(String(from["grpc-message"] ?? "")) };
};

describe("unary gRPC fast path", () => {
  it("answers grpc-js and connect-node gRPC clients, with headers, trailers and the token's identity", async () => {
    const def = protoLoader.loadSync("myevents/v1/event_service.proto", { includeDirs: PROTO_INCLUDE_DIRS });
    const loaded = grpc.loadPackageDefinition(def) as any;
    const client = new loaded.myevents.v1.EventService(`127.0.0.1:${running.port}`, grpc.credentials.createInsecure());
    const md = new grpc.Metadata();
    md.set("authorization", (await authHeader("ada")).authorization);
    try {
      let header: grpc.Metadata | undefined;
      let trailer: grpc.Metadata | undefined;
      let res: any;
      const taken = await fastCalls(
        () =>
          new Promise<void>((resolve, reject) => {
            const call = client.GetEvent({ id: "e1" }, md, { deadline: Date.now() + 5000 }, (err: Error | null, r: any) => (err ? reject(err) : ((res = r), resolve())));
            call.on("metadata", (m: grpc.Metadata) => (header = m));
            call.on("status", (s: grpc.StatusObject) => (trailer = s.metadata));
          }),
      );
      expect(taken).toBe(1);
      expect(res.event).toMatchObject({ id: "e1", name: "for ada", capacity: 1 }); // capacity 1: the handler saw a deadline
      expect(header!.get("x-header")).toEqual(["h"]);
      await eventually(() => expect(trailer!.get("x-trailer")).toEqual(["t"]));
    } finally {
      client.close();
    }

    const connectClient = createClient(EventService, createGrpcTransport({ baseUrl: base }));
    let got;
    expect(await fastCalls(async () => (got = await connectClient.getEvent({ id: "e2" }, { headers: await authHeader("bob") })))).toBe(1);
    expect(got!.event).toMatchObject({ id: "e2", name: "for bob", capacity: 0 });
  });

  it("leaves Connect, server streams and compressed requests to connect-node", async () => {
    const connect = createClient(EventService, createConnectTransport({ baseUrl: base, httpVersion: "2" }));
    expect(await fastCalls(() => connect.getEvent({ id: "c" }))).toBe(0);
    let compressed: RawAnswer | undefined;
    const gzipped = encodeEnvelope(gzipSync(toBinary(GetEventRequestSchema, create(GetEventRequestSchema, { id: "z" }))), 1);
    expect(await fastCalls(async () => (compressed = await raw(GET_EVENT, gzipped, { "grpc-encoding": "gzip" })))).toBe(0);
    expect(statusOf(compressed!).code).toBe(0); // connect decompressed it
    const health = createClient(Health, createGrpcTransport({ baseUrl: base }));
    expect(await fastCalls(async () => (await health.check({})).status)).toBe(1); // unary: fast
    expect(
      await fastCalls(async () => {
        const abort = new AbortController();
        for await (const _ of health.watch({}, { signal: abort.signal })) abort.abort();
      }).catch(() => 0),
    ).toBe(0);
  });

  it("carries error details and metadata, and hides unexpected errors behind Internal", async () => {
    const client = createClient(EventService, createGrpcTransport({ baseUrl: base }));
    const err = await client.getEvent({ id: "details" }).catch((e: unknown) => ConnectError.from(e));
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    expect((err as ConnectError).metadata.get("x-why")).toBe("testing");
    // What the handler set before it threw goes out too, as connect-node sends it.
    expect([(err as ConnectError).metadata.get("x-header-before-error"), (err as ConnectError).metadata.get("x-trailer-before-error")]).toEqual(["h", "t"]);
    expect((err as ConnectError).findDetails(BadRequestSchema)[0]?.fieldViolations[0]).toMatchObject({ field: "id", description: "is odd" });

    const bug = await raw(GET_EVENT, getEvent("bug"));
    expect(bug.status).toBe(200);
    expect(statusOf(bug)).toEqual({ code: Code.Internal, message: "internal error" });
    // ...and the observability interceptor logged both, with the code the errors interceptor chose.
    await eventually(() => expect(lines.some((l) => l.includes('"code":"Internal"') && l.includes("secret internals"))).toBe(true));
    expect(lines.some((l) => l.includes('"code":"InvalidArgument"') && l.includes('"protocol":"grpc"'))).toBe(true);
  });

  it("answers protocol mistakes with gRPC status codes", async () => {
    const cases: Array<[string, Buffer, http2.OutgoingHttpHeaders, Code]> = [
      ["no message", Buffer.alloc(0), {}, Code.Unimplemented],
      ["an envelope cut short", getEvent("abc").subarray(0, 7), {}, Code.InvalidArgument],
      ["two messages", Buffer.concat([getEvent("a"), getEvent("b")]), {}, Code.Unimplemented],
      ["bytes that are not the message", encodeEnvelope(Buffer.from([0xff, 0xff, 0xff])), {}, Code.InvalidArgument],
      ["a compressed flag without grpc-encoding", encodeEnvelope(Buffer.from([0x0a, 0x01, 0x61]), 1), {}, Code.InvalidArgument], // the caller's mistake, as on the connect-node path
      ["a message above MAX_REQUEST_BYTES", encodeEnvelope(Buffer.alloc(MAX_REQUEST_BYTES + 1, 0x20)), {}, Code.ResourceExhausted],
      ["a malformed grpc-timeout", getEvent("x"), { "grpc-timeout": "soon" }, Code.InvalidArgument],
      ["a deadline above MAX_DEADLINE_MS", getEvent("x"), { "grpc-timeout": "11S" }, Code.InvalidArgument],
    ];
    for (const [what, body, headers, code] of cases) {
      let answer: RawAnswer | undefined;
      expect(await fastCalls(async () => (answer = await raw(GET_EVENT, body, headers))), what).toBe(1);
      expect(answer!.status, what).toBe(200);
      expect(answer!.headers["content-type"], what).toBe("application/grpc");
      expect(statusOf(answer!).code, what).toBe(code);
    }
  });

  it("answers UNIMPLEMENTED for unknown methods and for methods a service leaves out", async () => {
    const unknown = await raw("/myevents.v1.EventService/Nope", getEvent("x"));
    expect([unknown.status, statusOf(unknown).code]).toEqual([200, Code.Unimplemented]);
    const unknownService = await raw("/nope.v1.Nope/Get", getEvent("x"));
    expect(statusOf(unknownService).code).toBe(Code.Unimplemented);
    const client = createClient(EventService, createGrpcTransport({ baseUrl: base }));
    const left = await client.listLocations({}).catch((e: unknown) => ConnectError.from(e));
    expect((left as ConnectError).code).toBe(Code.Unimplemented);
  });

  it("ends a call at its deadline and aborts the handler's signal", async () => {
    const client = createClient(EventService, createGrpcTransport({ baseUrl: base }));
    const answer = await raw(GET_EVENT, getEvent("wait-deadline"), { "grpc-timeout": "150m" });
    expect(statusOf(answer).code).toBe(Code.DeadlineExceeded);
    expect(ConnectError.from(aborted.get("wait-deadline")).code).toBe(Code.DeadlineExceeded);
    // Through a client too, which also enforces its own deadline.
    const err = await client.getEvent({ id: "wait-client" }, { timeoutMs: 150 }).catch((e: unknown) => ConnectError.from(e));
    expect((err as ConnectError).code).toBe(Code.DeadlineExceeded);
  });

  it("aborts the handler's signal when the client cancels", async () => {
    const client = createClient(EventService, createGrpcTransport({ baseUrl: base }));
    const abort = new AbortController();
    const call = client.getEvent({ id: "wait-cancel" }, { signal: abort.signal }).catch((e: unknown) => ConnectError.from(e));
    await new Promise((r) => setTimeout(r, 100));
    abort.abort();
    expect((await call as ConnectError).code).toBe(Code.Canceled);
    await eventually(() => expect(ConnectError.from(aborted.get("wait-cancel")).code).toBe(Code.Canceled));
    // The server is still fine afterwards.
    expect((await client.getEvent({ id: "after" })).event?.id).toBe("after");
  });

  it("sends no Date header, answer or error (gRPC does not use it)", async () => {
    const answer = await raw(GET_EVENT, getEvent("dateless"));
    const error = await raw(GET_EVENT, getEvent("details"));
    expect([statusOf(answer).code, statusOf(error).code]).toEqual([0, Code.InvalidArgument]) // OK, and an error;
    expect(answer.headers.date).toBeUndefined();
    expect(answer.trailers.date).toBeUndefined();
    expect(error.headers.date).toBeUndefined();
    expect(answer.headers["x-header"]).toBe("h"); // everything else still there
  });

    it("decodes what it encodes: the response bytes are a GetEventResponse in one envelope", async () => {
    const answer = await raw(GET_EVENT, getEvent("bytes"), { "content-type": "application/grpc+proto" });
    expect(answer.headers["content-type"]).toBe("application/grpc+proto");
    expect(answer.body[0]).toBe(0);
    expect(answer.body.readUInt32BE(1)).toBe(answer.body.length - 5);
    expect(fromBinary(GetEventResponseSchema, answer.body.subarray(5)).event?.id).toBe("bytes");
    expect(statusOf(answer).code).toBe(0); // OK
  });
});

describe("an interceptor that copies the request with ...req", () => {
  let copying: RunningService;
  const seen: { url?: string; signal?: boolean; handlerUrl?: string }[] = [];
  beforeAll(async () => {
    const env = new EnvReader({ ...TEST_AUTH_ENV, PORT: "0", ADMIN_PORT: "0", HOST: "127.0.0.1" });
    const config = readRuntimeConfig(env, { port: 0, adminPort: 0 });
    copying = await startService({
      name: "copying",
      config,
      logger: createLogger("error", {}, () => {}),
      services: [serve(EventService, { getEvent: (req, ctx) => (seen.push({ handlerUrl: ctx.url }), { event: { id: req.id } }) })],
      interceptors: [
        (next) => (req) => {
          const copy = { ...req };
          seen.push({ url: copy.url, signal: copy.signal instanceof AbortSignal && !copy.signal.aborted });
          return next(copy);
        },
      ],
    });
  });
  afterAll(() => copying?.shutdown());

  it("still sees the url and the signal, and the handler gets the call", async () => {
    const before = copying.fastPath!.calls;
    const client = createClient(EventService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${copying.port}` }));
    expect((await client.getEvent({ id: "e1" })).event?.id).toBe("e1");
    expect(copying.fastPath!.calls - before).toBe(1);
    const url = `http://127.0.0.1:${copying.port}${GET_EVENT}`;
    expect(seen).toEqual([{ url, signal: true }, { handlerUrl: url }]);
  });
});
