// The EventService's own CPU per unary gRPC call, without sockets or HTTP/2: the fast path
// (grpc-unary.ts), the production interceptors, the handler, the in-memory store and the
// encoding, driven with fake HTTP/2 streams in this one process. What the runtime's code
// costs, apart from node's HTTP/2 (which the bare grpc-js server pays too) and the load client.
//   npm run build && node dist/bench/fast-path-cpu.js [calls per batch, default 20000] [batches, default 8] >/dev/null
// GRPC_TIMEOUT=9999990u sends that grpc-timeout with every GetEvent, as grpc-go sends one on
// every call (its deadline timer is then part of what is measured).
// Prints µs of CPU (user + system) per call for each batch and their median on stderr
// (stdout takes the access log lines, LOG_LEVEL=info as in production). To compare two builds,
// run each one's copy alternately, several times.
import { EventEmitter } from "node:events";
import type http2 from "node:http2";
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { randomBytes } from "node:crypto";
import {
  CreateEventRequestSchema,
  CreateEventResponseSchema,
  CreateLocationRequestSchema,
  CreateLocationResponseSchema,
  GetEventRequestSchema,
} from "../gen/myevents/v1/event_service_pb.js";
import { readEventsConfig, startEventsService } from "../services/events/app.js";
import { EnvReader } from "../services/runtime/config.js";
import { encodeEnvelope } from "../services/runtime/grpc-wire.js";
import { createLogger } from "../services/runtime/logger.js";
import { mutationHeaders } from "./lib.js";

const CALLS = Number(process.argv[2] ?? 20_000);
const BATCHES = Number(process.argv[3] ?? 8);
const TIMEOUT: Record<string, string> = process.env.GRPC_TIMEOUT ? { "grpc-timeout": process.env.GRPC_TIMEOUT } : {};
const CONCURRENCY = 64;

process.env.JWT_SECRET ??= randomBytes(32).toString("base64url");
const config = readEventsConfig(new EnvReader({ PORT: "0", ADMIN_PORT: "0", LOG_LEVEL: "info", HOST: "127.0.0.1", JWT_SECRET: process.env.JWT_SECRET }));
const running = await startEventsService(config, { logger: createLogger(config.runtime.logLevel, { service: "events" }) });
const fastPath = running.fastPath!;

/** Just what the fast path uses of an HTTP/2 stream; `done` gets the trailers (or error headers). */
class FakeStream extends EventEmitter {
  destroyed = false;
  frame: Buffer | undefined;
  constructor(private readonly done: (status: string, frame: Buffer | undefined) => void) {
    super();
  }
  respond(head: http2.OutgoingHttpHeaders, options?: { endStream?: boolean }) {
    if (options?.endStream) this.close(String(head["grpc-status"]));
  }
  end(frame: Buffer) {
    this.frame = frame;
    this.emit("wantTrailers");
  }
  sendTrailers(trailers: http2.OutgoingHttpHeaders) {
    this.close(String(trailers["grpc-status"]));
  }
  private close(status: string) {
    this.destroyed = true;
    this.emit("close");
    this.done(status, this.frame);
  }
}

const baseHeaders = { ":method": "POST", ":scheme": "http", ":authority": "127.0.0.1:50051", "content-type": "application/grpc", te: "trailers", "user-agent": "grpc-node-js/1.12.6", "grpc-accept-encoding": "identity,deflate,gzip", "accept-encoding": "identity" };

/** One call with an encoded request frame; resolves to the response message's bytes. */
function call(method: string, frame: Buffer, extra: Record<string, string> = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const stream = new FakeStream((status, answer) => (status === "0" && answer ? resolve(answer.subarray(5)) : reject(new Error(`${method}: grpc-status ${status}`))));
    // Null prototype, as node:http2 makes a request's header object (which makes V8 keep it as a dictionary).
    const headers: http2.IncomingHttpHeaders = Object.assign(Object.create(null), baseHeaders, { ":path": `/myevents.v1.EventService/${method}` }, extra);
    if (!fastPath.handle(stream as unknown as http2.ServerHttp2Stream, headers)) return reject(new Error(`${method} not taken`));
    stream.emit("data", frame);
    stream.emit("end");
  });
}

const frameOf = <I extends DescMessage>(schema: I, init: MessageInitShape<I>) => encodeEnvelope(toBinary(schema, create(schema, init)));
const admin = await mutationHeaders();
const { location } = fromBinary(CreateLocationResponseSchema, await call("CreateLocation", frameOf(CreateLocationRequestSchema, { location: { name: "Bench Arena", address: "Main St 1", country: "de", halls: [{ name: "A", capacity: 100 }] } }), admin));
const start = Date.now() + 86_400_000;
const { event } = fromBinary(
  CreateEventResponseSchema,
  await call("CreateEvent", frameOf(CreateEventRequestSchema, { event: { name: "Bench concert", locationId: location!.id, hall: "A", startTime: timestampFromMs(start), endTime: timestampFromMs(start + 7_200_000) } }), admin),
);
const getEvent = frameOf(GetEventRequestSchema, { id: event!.id });

// Calls between two turns of the event loop. Fake streams answer in microtasks only, so
// without a turn the logger's buffered lines would be written only at exit (all of them
// kept alive until then); a server's socket reads give it turns.
const CALLS_PER_TURN = 1_000;

async function batch(calls: number): Promise<number> {
  let next = 0;
  let turnAt = 0;
  const worker = async () => {
    while (next < turnAt) {
      next++;
      await call("GetEvent", getEvent, TIMEOUT);
    }
  };
  const cpu = process.cpuUsage();
  while (turnAt < calls) {
    turnAt = Math.min(calls, turnAt + CALLS_PER_TURN);
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    await new Promise(setImmediate);
  }
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / calls;
}

await batch(CALLS); // warm-up: compiled rules, optimized code
const perCall: number[] = [];
for (let i = 0; i < BATCHES; i++) {
  perCall.push(await batch(CALLS));
  process.stderr.write(`batch ${i}: ${perCall.at(-1)!.toFixed(2)} µs/call\n`);
}
const sorted = [...perCall].sort((a, b) => a - b);
process.stderr.write(`median ${sorted[sorted.length >> 1]!.toFixed(2)} µs/call (min ${sorted[0]!.toFixed(2)}, max ${sorted.at(-1)!.toFixed(2)})\n`);
await running.shutdown();
process.exit(0);
