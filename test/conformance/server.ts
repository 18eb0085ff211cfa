// The server under test for the Connect conformance suite (connectrpc.com/conformance,
// docs/testing_servers.md): reads one size-prefixed ServerCompatRequest from stdin,
// starts the ConformanceService on OUR runtime (startService: the unary gRPC fast
// path, the undecodable-request answers and the shared interceptors, with
// connect-node for the rest), and writes one size-prefixed ServerCompatResponse
// with the port to stdout. Run by conformance.test.ts through `connectconformance
// --mode server`; logs go to stderr, stdout carries only the response.
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { anyPack, type Any } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";

import { EnvReader, readRuntimeConfig } from "../../services/runtime/config.js";
import { createLogger } from "../../services/runtime/logger.js";
import { exitOnSignals, serve, startService } from "../../services/runtime/server.js";
import {
  BidiStreamRequestSchema,
  ClientStreamRequestSchema,
  ConformancePayload_RequestInfoSchema,
  ConformanceService,
  IdempotentUnaryRequestSchema,
  ServerStreamRequestSchema,
  UnaryRequestSchema,
  type Error as ErrorDefinition,
  type BidiStreamRequest,
  type ClientStreamRequest,
  type Header,
  type IdempotentUnaryRequest,
  type ServerStreamRequest,
  type UnaryRequest,
  type StreamResponseDefinition,
  type UnaryResponseDefinition,
} from "./gen/connectrpc/conformance/v1/service_pb.js";
import { ServerCompatRequestSchema, ServerCompatResponseSchema } from "./gen/connectrpc/conformance/v1/server_compat_pb.js";

type RequestInfoInit = MessageInitShape<typeof ConformancePayload_RequestInfoSchema>;

/** What every response echoes: the headers, timeout (and for a Connect GET, the query) the server saw. */
function observed(ctx: HandlerContext, requests: Any[]): RequestInfoInit {
  const requestHeaders: { name: string; value: string[] }[] = [];
  ctx.requestHeader.forEach((value, name) => requestHeaders.push({ name, value: [value] }));
  const timeout = ctx.timeoutMs();
  const info: RequestInfoInit = { requestHeaders, requests, timeoutMs: timeout === undefined ? undefined : BigInt(Math.round(timeout)) };
  if (ctx.requestMethod === "GET") {
    const queryParams: { name: string; value: string[] }[] = [];
    new URL(ctx.url, "http://localhost").searchParams.forEach((value, name) => queryParams.push({ name, value: [value] }));
    info.connectGetInfo = { queryParams };
  }
  return info;
}

function setAll(target: Headers, headers: Header[]): void {
  for (const h of headers) for (const v of h.value) target.append(h.name, v);
}

/**
 * The error a response definition asks for; `info` (the request info, for an
 * error sent before any response message) goes in its details.
 */
function definedError(def: ErrorDefinition, info?: RequestInfoInit): ConnectError {
  const err = new ConnectError(def.message ?? "", def.code as number as Code);
  // Already-encoded details (Any) go out as they are.
  for (const d of def.details) err.details.push({ type: d.typeUrl.slice(d.typeUrl.lastIndexOf("/") + 1), value: d.value });
  if (info !== undefined) err.details.push({ desc: ConformancePayload_RequestInfoSchema, value: create(ConformancePayload_RequestInfoSchema, info) });
  return err;
}

/** Unary and client-stream answers: headers and trailers, then the data or the error, after the delay. */
async function answerOnce(def: UnaryResponseDefinition | undefined, info: RequestInfoInit, ctx: HandlerContext) {
  if (def === undefined) return { payload: { requestInfo: info } };
  setAll(ctx.responseHeader, def.responseHeaders);
  setAll(ctx.responseTrailer, def.responseTrailers);
  await sleep(def.responseDelayMs, undefined, { signal: ctx.signal });
  if (def.response.case === "error") throw definedError(def.response.value, info);
  return { payload: { requestInfo: info, data: def.response.value } };
}

/** A stream definition's headers and trailers, set before anything is sent. */
function startStream(def: StreamResponseDefinition | undefined, ctx: HandlerContext): void {
  if (def === undefined) return;
  setAll(ctx.responseHeader, def.responseHeaders);
  setAll(ctx.responseTrailer, def.responseTrailers);
}

const impl = {
  unary(req: UnaryRequest, ctx: HandlerContext) {
    return answerOnce(req.responseDefinition, observed(ctx, [anyPack(UnaryRequestSchema, req)]), ctx);
  },

  idempotentUnary(req: IdempotentUnaryRequest, ctx: HandlerContext) {
    return answerOnce(req.responseDefinition, observed(ctx, [anyPack(IdempotentUnaryRequestSchema, req)]), ctx);
  },

  async clientStream(reqs: AsyncIterable<ClientStreamRequest>, ctx: HandlerContext) {
    const requests: Any[] = [];
    let def: UnaryResponseDefinition | undefined;
    for await (const req of reqs) {
      if (requests.length === 0) def = req.responseDefinition;
      requests.push(anyPack(ClientStreamRequestSchema, req));
    }
    return answerOnce(def, observed(ctx, requests), ctx);
  },

  async *serverStream(req: ServerStreamRequest, ctx: HandlerContext) {
    const def = req.responseDefinition;
    startStream(def, ctx);
    const info = observed(ctx, [anyPack(ServerStreamRequestSchema, req)]);
    const data = def?.responseData ?? [];
    for (const [i, chunk] of data.entries()) {
      await sleep(def!.responseDelayMs, undefined, { signal: ctx.signal });
      yield { payload: { data: chunk, requestInfo: i === 0 ? info : undefined } };
    }
    if (def?.error) throw definedError(def.error, data.length === 0 ? info : undefined);
  },

  async *bidiStream(reqs: AsyncIterable<BidiStreamRequest>, ctx: HandlerContext) {
    let def: StreamResponseDefinition | undefined;
    let fullDuplex = false;
    let received: Any[] = [];
    let sent = 0;
    const next = async (info: RequestInfoInit | undefined) => {
      await sleep(def!.responseDelayMs, undefined, { signal: ctx.signal });
      return { payload: { data: def!.responseData[sent++], requestInfo: info } };
    };
    let first = true;
    for await (const req of reqs) {
      if (first) {
        def = req.responseDefinition;
        fullDuplex = req.fullDuplex;
        startStream(def, ctx);
        first = false;
      }
      received.push(anyPack(BidiStreamRequestSchema, req));
      if (!fullDuplex) continue;
      // Full duplex: one response per request, each echoing the requests since the last one.
      const info = sent === 0 ? observed(ctx, received) : { requests: received };
      if (def === undefined || sent >= def.responseData.length) {
        if (def?.error) throw definedError(def.error, info);
        continue;
      }
      received = [];
      yield await next(info);
    }
    if (def === undefined) return;
    // Half duplex (or what a full-duplex definition had left): the rest, the first echoing every request.
    const info = sent === 0 ? observed(ctx, received) : undefined;
    while (sent < def.responseData.length) yield await next(sent === 0 ? info : undefined);
    if (def.error) throw definedError(def.error, sent === 0 ? observed(ctx, received) : undefined);
  },
};

/** One size-prefixed message: a 4-byte big-endian length, then the bytes (stdin may stay open). */
async function readSizePrefixed(stream: NodeJS.ReadableStream): Promise<Uint8Array> {
  let read = Buffer.alloc(0);
  for await (const chunk of stream) {
    read = Buffer.concat([read, chunk as Buffer]);
    if (read.length >= 4 && read.length >= 4 + read.readUInt32BE(0)) return read.subarray(4, 4 + read.readUInt32BE(0));
  }
  throw new Error(`stdin ended after ${read.length} bytes, before a whole ServerCompatRequest`);
}

const compat = fromBinary(ServerCompatRequestSchema, await readSizePrefixed(process.stdin));
if (compat.useTls) throw new Error("the server under test serves cleartext only (config.yaml says so)");

const env = new EnvReader({
  HOST: "127.0.0.1",
  PORT: "0",
  ADMIN_PORT: "0",
  // Any key: every conformance method is open (no tokens in the suite's requests).
  JWT_SECRET: randomBytes(32).toString("hex"),
  ...(compat.messageReceiveLimit > 0 ? { MAX_REQUEST_BYTES: String(compat.messageReceiveLimit) } : {}),
});
const config = readRuntimeConfig(env, { port: 0, adminPort: 0 });
env.done();
const logger = createLogger("warn", { service: "conformance" }, (line) => process.stderr.write(line));
const running = await startService({
  name: "conformance",
  config,
  logger,
  services: [serve(ConformanceService, impl)],
  access: () => "open",
});
exitOnSignals([running], logger);

const response = toBinary(ServerCompatResponseSchema, create(ServerCompatResponseSchema, { host: "127.0.0.1", port: running.port }));
const size = Buffer.alloc(4);
size.writeUInt32BE(response.length);
process.stdout.write(Buffer.concat([size, response]));
