import { AsyncResource } from "node:async_hooks";
import { randomFillSync } from "node:crypto";
import {
  ROOT_CONTEXT,
  TraceFlags,
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  propagation,
  trace,
  type Context,
  type Span,
  type SpanContext,
  type SpanOptions,
  type TextMapGetter,
  type TraceState,
  type Tracer,
  type TracerProvider,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";

/**
 * W3C trace context for the whole mesh, through the standard
 * @opentelemetry/api: the active span lives in AsyncLocalStorage (so log
 * lines, outgoing RPCs and outbox entries find it without being handed
 * it), and `traceparent`/`tracestate` are read and written by the W3C
 * propagator. Without an exporter (OTEL_EXPORTER_OTLP_ENDPOINT unset) spans
 * are non-recording: they only carry fresh ids, so traces still connect
 * across services and into logs, and no SDK is loaded. tracing-export.ts
 * swaps in the SDK's tracer when an endpoint is set.
 */

let installed = false;
let provider: TracerProvider | undefined;
let current: Tracer | undefined;

/**
 * Installs the context manager and the W3C propagator once per process
 * (idempotent). OTEL_SDK_DISABLED=true leaves the context manager out:
 * on Node 20 AsyncLocalStorage costs every awaited promise in the process
 * (see bench/tracing-cost.ts); without it nothing is carried inside a
 * process (no trace ids in logs, each hop starts its own trace), which
 * is what "tracing off" means here.
 */
export function installTracing(): void {
  if (installed) return;
  installed = true;
  if (process.env.OTEL_SDK_DISABLED !== "true") context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
}

/** The tracer every span of the mesh is started with. */
export function tracer(): Tracer {
  if (!current) {
    installTracing();
    current = (provider ?? propagationOnly).getTracer("myevents");
  }
  return current;
}

/** Replaces the tracer provider (the exporting SDK); undefined goes back to ids-only spans. */
export function useTracerProvider(next: TracerProvider | undefined): void {
  provider = next;
  current = undefined;
}

/** Whether spans are recorded and exported (an endpoint is configured). */
export function isExporting(): boolean {
  return provider !== undefined;
}

/**
 * Spans that record nothing but have real ids: a child keeps its parent's
 * trace id and flags, a root gets a new trace id (not sampled: nothing here
 * records it). This is what makes the trace id in logs and messages work
 * with export off, at the cost of two random ids per span.
 */
const propagationOnly: TracerProvider = {
  getTracer: () => idsOnlyTracer,
};

const idsOnlyTracer: Tracer = {
  startSpan(_name: string, options?: SpanOptions, ctx: Context = context.active()): Span {
    const parent = options?.root ? undefined : trace.getSpanContext(ctx);
    const valid = parent !== undefined && isValid(parent);
    const spanContext = valid ? new IdsOnlySpanContext(parent.traceId, randomHex(8), parent.traceFlags) : new IdsOnlySpanContext(randomHex(16), randomHex(8), TraceFlags.NONE);
    if (valid && parent.traceState) spanContext.traceState = parent.traceState;
    return trace.wrapSpanContext(spanContext);
  },
  startActiveSpan(name: string, ...args: unknown[]) {
    const fn = args.pop() as (span: Span) => unknown;
    const [options, ctx = context.active()] = args as [SpanOptions | undefined, Context | undefined];
    const span = this.startSpan(name, options, ctx);
    return context.with(trace.setSpan(ctx, span), fn, undefined, span);
  },
} as Tracer;

/**
 * A span context made here: valid by construction (a valid parent's trace
 * id or random ones, never all zeros), so the active span's, read for every
 * log line, is not checked again with OpenTelemetry's two regular expressions.
 */
class IdsOnlySpanContext implements SpanContext {
  declare traceState?: TraceState;
  constructor(
    readonly traceId: string,
    readonly spanId: string,
    readonly traceFlags: number,
  ) {}
}

function isValid(span: SpanContext): boolean {
  return span instanceof IdsOnlySpanContext || trace.isSpanContextValid(span);
}

// Random bytes are drawn from crypto 8 KiB at a time, turned into hex in
// one call, and cut into ids: cheaper per span than building hex from
// Math.random (what the OpenTelemetry SDK does), and unpredictable. A cut
// of a string is a slice V8 shares the characters of, not a copy: a
// native hex conversion per id cost about twice as much.
const randomPool = Buffer.allocUnsafe(8192);
let randomHexPool = "";
let randomAt = 0;
function randomHex(bytes: 8 | 16): string {
  const chars = bytes * 2;
  if (randomAt + chars > randomHexPool.length) {
    randomHexPool = randomFillSync(randomPool).toString("hex");
    randomAt = 0;
  }
  const out = randomHexPool.slice(randomAt, (randomAt += chars));
  // All zeros is invalid in W3C trace context.
  return out === ZEROS[bytes] ? randomHex(bytes) : out;
}
const ZEROS = { 8: "0".repeat(16), 16: "0".repeat(32) };

/** Reads trace headers from fetch-style Headers (Connect request headers). */
export const headersGetter: TextMapGetter<Headers> = {
  get: (carrier, key) => carrier.get(key) ?? undefined,
  keys: (carrier) => [...carrier.keys()],
};

/** The remote parent named by `traceparent`/`tracestate` in `headers`; ROOT_CONTEXT when absent or invalid. */
export function contextFromHeaders(headers: Headers): Context {
  installTracing();
  return propagation.extract(ROOT_CONTEXT, headers, headersGetter);
}

/** Writes the span of `ctx` as `traceparent` (and `tracestate`) into outgoing headers, replacing any there. */
export function injectHeaders(ctx: Context, headers: Headers): void {
  installTracing();
  headers.delete("traceparent");
  headers.delete("tracestate");
  propagation.inject(ctx, headers, { set: (carrier, key, value) => carrier.set(key, value) });
}

/** W3C trace headers as plain fields, e.g. for an outbox entry or an AMQP message. */
export interface TraceHeaders {
  traceparent?: string;
  tracestate?: string;
}

/** The trace headers of `ctx` (default: the active context); empty when there is no valid span. */
export function traceHeadersOf(ctx: Context = context.active()): TraceHeaders {
  installTracing();
  const carrier: TraceHeaders = {};
  propagation.inject(ctx, carrier, defaultTextMapSetter);
  return carrier;
}

/** The remote parent carried by trace fields (a message's, Node's request headers); ROOT_CONTEXT when absent or invalid. */
export function contextFromTraceHeaders(fields: { traceparent?: string | string[]; tracestate?: string | string[] }): Context {
  if (fields.traceparent === undefined) return ROOT_CONTEXT;
  installTracing();
  return propagation.extract(ROOT_CONTEXT, fields, defaultTextMapGetter);
}

/** The ids of the active span, for log lines; undefined outside any trace. */
export function activeTraceIds(): { trace_id: string; span_id: string } | undefined {
  const span = activeSpanIds();
  return span && { trace_id: span.traceId, span_id: span.spanId };
}

/** The active span's context when it is valid, without making an object (log lines). */
export function activeSpanIds(): SpanContext | undefined {
  const span = trace.getSpanContext(context.active());
  return span && isValid(span) ? span : undefined;
}

/**
 * The same iterable, but every step runs in the async context current now.
 * A response stream is pulled by the server's writer, outside the RPC's
 * context; this keeps the stream's handler code (and its log lines) in the
 * RPC's trace.
 */
export function inCurrentContext<T>(source: AsyncIterable<T>): AsyncIterable<T> {
  const scope = new AsyncResource("rpc-stream");
  return {
    [Symbol.asyncIterator]() {
      const it = source[Symbol.asyncIterator]();
      return {
        next: (...args: [] | [unknown]) => scope.runInAsyncScope(() => it.next(...args)),
        return: (value?: unknown) => scope.runInAsyncScope(() => it.return?.(value) ?? Promise.resolve({ done: true as const, value: value as T })),
        throw: (err?: unknown) => scope.runInAsyncScope(() => it.throw?.(err) ?? Promise.reject(err)),
      };
    },
  };
}
