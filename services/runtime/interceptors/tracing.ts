import { Code } from "@connectrpc/connect";
import { SpanKind, SpanStatusCode, context, trace, type Context, type Span } from "@opentelemetry/api";
import { contextFromHeaders, injectHeaders, tracer } from "../tracing.js";
import type { CallObserver, RpcObserver, RpcOutcome } from "./outcome.js";

// Health probes arrive every few seconds from Kubernetes and the gateway: not worth a trace.
const UNTRACED_SERVICE = "grpc.health.v1.Health";
const untraced: CallObserver = { done() {} };

// Codes that are the server's fault, per the OpenTelemetry gRPC conventions for server spans.
const SERVER_ERRORS = new Set([Code.Unknown, Code.DeadlineExceeded, Code.Unimplemented, Code.Internal, Code.Unavailable, Code.DataLoss]);

/**
 * The server span of each RPC: a child of the caller's `traceparent` (a
 * new trace when it is absent or invalid, never an error), active for the
 * rest of the call so that log lines, outgoing calls and outbox entries
 * carry its trace.
 */
export function rpcServerSpan(): RpcObserver {
  return (req) => {
    if (req.service.typeName === UNTRACED_SERVICE) return untraced;
    const parent = contextFromHeaders(req.header);
    const span = tracer().startSpan(spanName(req), { kind: SpanKind.SERVER }, parent);
    if (span.isRecording()) span.setAttributes(rpcAttributes(req));
    return new ServerSpanCall(span, trace.setSpan(parent, span));
  };
}

/** A class rather than closures per call: one object per call. */
class ServerSpanCall implements CallObserver {
  constructor(
    private readonly span: Span,
    private readonly active: Context,
  ) {}
  run<T>(call: () => T): T {
    return context.with(this.active, call);
  }
  done(outcome: RpcOutcome): void {
    end(this.span, outcome, isServerError);
  }
}
const isServerError = (code: Code) => SERVER_ERRORS.has(code);

/**
 * The client span of each outgoing RPC, a child of the active span (a new
 * trace outside any), written into the request's `traceparent` and
 * `tracestate` (replacing any copied from elsewhere).
 */
export function rpcClientSpan(): RpcObserver {
  return (req) => {
    if (req.service.typeName === UNTRACED_SERVICE) return untraced;
    const parent = context.active();
    const span = tracer().startSpan(spanName(req), { kind: SpanKind.CLIENT }, parent);
    if (span.isRecording()) span.setAttributes(rpcAttributes(req));
    injectHeaders(trace.setSpan(parent, span), req.header);
    return { done: (outcome) => end(span, outcome, () => true) };
  };
}

type Req = Parameters<RpcObserver>[0];

function spanName(req: Req): string {
  return `${req.service.typeName}/${req.method.name}`;
}

function rpcAttributes(req: Req) {
  return { "rpc.system": "grpc", "rpc.service": req.service.typeName, "rpc.method": req.method.name };
}

function end(span: Span, { error }: RpcOutcome, isError: (code: Code) => boolean): void {
  if (span.isRecording()) {
    span.setAttribute("rpc.grpc.status_code", error?.code ?? 0);
    if (error && isError(error.code)) span.setStatus({ code: SpanStatusCode.ERROR, message: error.rawMessage });
  }
  span.end();
}
