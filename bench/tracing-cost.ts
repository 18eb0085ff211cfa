// What tracing adds to each RPC on the server, in CPU time per call,
// without the network: the runtime's observing interceptor (log line and
// metrics) around a trivial handler, without and with the span observer
// (ids-only spans, export off, as by default), with a caller traceparent.
// Also the cost AsyncLocalStorage's promise hooks add to promise-heavy code
// once a context is in use (Node 20 implements it with async hooks).
//   node --import tsx bench/tracing-cost.ts
import { create } from "@bufbuild/protobuf";
import { createContextValues, type Interceptor } from "@connectrpc/connect";
import { Registry } from "prom-client";
import { context } from "@opentelemetry/api";
import { EventService, GetEventRequestSchema } from "../gen/myevents/v1/event_service_pb.js";
import { rpcLog } from "../services/runtime/interceptors/logging.js";
import { rpcMetrics } from "../services/runtime/interceptors/metrics.js";
import { observingInterceptor } from "../services/runtime/interceptors/outcome.js";
import { rpcServerSpan } from "../services/runtime/interceptors/tracing.js";
import { createLogger } from "../services/runtime/logger.js";
import { installTracing } from "../services/runtime/tracing.js";

const CALLS = 100_000;
const ROUNDS = 5;
const logger = createLogger("info", { service: "bench" }, () => {});
const method = EventService.method.getEvent;

function request() {
  return {
    stream: false as const,
    service: EventService,
    method,
    requestMethod: "POST",
    url: "http://localhost/myevents.v1.EventService/GetEvent",
    signal: new AbortController().signal,
    header: new Headers({ "content-type": "application/grpc", traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" }),
    contextValues: createContextValues(),
    message: create(GetEventRequestSchema, { id: "e1" }),
  };
}

async function perCallMicros(interceptor: Interceptor): Promise<number> {
  const handler = interceptor(async (req) => ({ stream: false, service: req.service, method: req.method, header: new Headers(), trailer: new Headers(), message: {} }) as never);
  const start = process.cpuUsage();
  for (let i = 0; i < CALLS; i++) await handler(request() as never);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / CALLS;
}

async function promiseLoopMs(): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < 1_000_000; i++) await Promise.resolve(i);
  return Number(process.hrtime.bigint() - start) / 1e6;
}

const registry = new Registry();
const observers = [rpcLog(logger), rpcMetrics(registry)];
const without = observingInterceptor(observers);
const withSpan = observingInterceptor([rpcServerSpan(), ...observers]);

await promiseLoopMs(); // warm-up
const loopBefore = await promiseLoopMs();
installTracing();
await context.with(context.active(), () => Promise.resolve()); // AsyncLocalStorage now in use
const loopAfter = await promiseLoopMs();
const rows: Array<{ without: number; with: number }> = [];
for (let round = 0; round < ROUNDS; round++) {
  // Alternate the order so drift (GC, other load) does not favour one side.
  if (round % 2 === 0) rows.push({ without: await perCallMicros(without), with: await perCallMicros(withSpan) });
  else rows.push({ with: await perCallMicros(withSpan), without: await perCallMicros(without) });
}
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const w = median(rows.map((r) => r.without));
const t = median(rows.map((r) => r.with));
console.log(`observing interceptor, CPU per call (median of ${ROUNDS} x ${CALLS}): without span ${w.toFixed(2)} µs, with span ${t.toFixed(2)} µs, +${(t - w).toFixed(2)} µs`);
console.log(`1,000,000 awaited promises: ${loopBefore.toFixed(0)} ms before any trace context, ${loopAfter.toFixed(0)} ms with AsyncLocalStorage in use`);
