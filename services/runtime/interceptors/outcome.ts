import { performance } from "node:perf_hooks";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { StreamRequest, StreamResponse, UnaryRequest, UnaryResponse } from "@connectrpc/connect";
import { parseTimeout as parseConnectTimeout } from "@connectrpc/connect/protocol-connect";
import { parseTimeout as parseGrpcTimeout } from "@connectrpc/connect/protocol-grpc";
import { callerGone } from "../errors.js";
import { inCurrentContext } from "../tracing.js";
import { settleErrors } from "./errors.js";

type AnyRequest = UnaryRequest | StreamRequest;
type AnyResponse = UnaryResponse | StreamResponse;

/** How one RPC ended, as seen by the observing interceptors. */
export interface RpcOutcome {
  /** Status code name as gRPC spells it ("OK", "NotFound", ...). */
  code: string;
  durationSeconds: number;
  error?: ConnectError;
}

/** What one observer does with one call: count sent messages, record the outcome. */
export interface CallObserver {
  sent?(): void;
  done(outcome: RpcOutcome): void;
  /** Runs the rest of the call (inner interceptors, handler, the other observers' done) in a context, e.g. the RPC's span. */
  run?<T>(call: () => T): T;
}

/** Called when an RPC starts; returns what to do as it goes on (metrics, logs). */
export type RpcObserver = (req: AnyRequest) => CallObserver;

/**
 * One interceptor for every observer of RPCs, so the timing, the stream
 * wrapping and the outcome are worked out once per call, not once per
 * observer.
 */
export function observingInterceptor(observers: RpcObserver[], side: "server" | "client" = "server", options: ObservingOptions = {}): Interceptor {
  const server = side === "server";
  const settle = options.settleErrors === true;
  return (next) => (req) => new ObservedCall(req, observers, server, settle).enter(next, observers.length - 1);
}

export interface ObservingOptions {
  /**
   * Map errors as errorsInterceptor() does, before the observers see them:
   * the same as that interceptor right inside this one, one promise less
   * per call (promises cost more while AsyncLocalStorage tracks them).
   */
  settleErrors?: boolean;
}

/**
 * One call under observation: runs `next` and reports the RPC's outcome to
 * every observer once it is really over: for a unary call when the
 * response is ready, for a server stream when its last message was sent
 * (or it failed). A class, its methods shared: closures per call were
 * a good part of what the observers allocated. Not async, and one promise
 * per call: while AsyncLocalStorage carries the trace context, every
 * promise costs a little on every call.
 *
 * Each observer's `sent` runs when a unary response or a stream's last
 * message is sent. On the server side (`server`), a call whose caller went
 * away before it ended is recorded as what the caller saw (see callerLeft),
 * whatever the handler returned or threw afterwards.
 */
class ObservedCall {
  private readonly calls: CallObserver[];
  private start = 0;

  constructor(
    private readonly req: AnyRequest,
    observers: RpcObserver[],
    private readonly server: boolean,
    private readonly settle: boolean,
  ) {
    this.calls = new Array<CallObserver>(observers.length);
    for (let i = 0; i < observers.length; i++) this.calls[i] = observers[i]!(req);
  }

  /** Runs the rest of the call inside each observer's `run` (the first observer's innermost), then observes it. */
  enter(next: (req: AnyRequest) => Promise<AnyResponse>, i: number): Promise<AnyResponse> {
    for (; i >= 0; i--) {
      const call = this.calls[i]!;
      if (call.run !== undefined) return call.run(() => this.enter(next, i - 1));
    }
    return this.observe(next);
  }

  private observe(next: (req: AnyRequest) => Promise<AnyResponse>): Promise<AnyResponse> {
    this.start = performance.now();
    let pending: Promise<AnyResponse>;
    try {
      pending = next(this.req);
    } catch (err) {
      const settled = this.settled(err);
      this.finish(settled);
      return Promise.reject(settled);
    }
    return pending.then(
      (res) => {
        if (!res.stream) {
          this.sent();
          this.finish();
          return res;
        }
        const message = this.settle ? settleErrors.stream(res.message, this.req.signal) : res.message;
        // Pulled later by the writer: keep each step in this call's context (its trace).
        return { ...res, message: inCurrentContext(watchStream(message, this)) };
      },
      (err: unknown) => {
        const settled = this.settled(err);
        this.finish(settled);
        throw settled;
      },
    );
  }

  private settled(err: unknown): unknown {
    return this.settle ? settleErrors.error(err, this.req.signal) : err;
  }

  sent(): void {
    for (const call of this.calls) call.sent?.();
  }

  finish(err?: unknown): void {
    const elapsedMs = performance.now() - this.start;
    const durationSeconds = elapsedMs / 1e3;
    const gone = this.server ? callerLeft(this.req, elapsedMs) : undefined;
    if (gone !== undefined) return this.done({ code: codeName(gone.code), durationSeconds, error: gone });
    if (err === undefined) return this.done({ code: "OK", durationSeconds });
    const error = ConnectError.from(err);
    this.done({ code: codeName(error.code), durationSeconds, error });
  }

  private done(outcome: RpcOutcome): void {
    for (const call of this.calls) call.done(outcome);
  }
}

async function* watchStream<T>(source: AsyncIterable<T>, call: ObservedCall) {
  try {
    for await (const message of source) {
      yield message;
      call.sent();
    }
  } catch (err) {
    call.finish(err);
    throw err;
  }
  call.finish();
}

/**
 * Set on requests whose signal is made only when asked for (the unary gRPC
 * fast path, grpc-unary.ts): tells why the call was aborted, if it was,
 * without making the signal.
 */
export const ABORT_STATE = Symbol("abort state");
export interface AbortState {
  readonly abortReason: unknown;
}

/**
 * The code to record for a call whose signal was aborted before it ended,
 * i.e. what its caller saw: DeadlineExceeded when this process's deadline
 * timer aborted it (the caller got that answer); otherwise the caller went
 * away (reset its HTTP/2 stream, closed its connection), and callerGone says
 * DeadlineExceeded if the caller's deadline had (all but) passed, else
 * Canceled. Without this, connect-node clients giving up at their deadline
 * (RST_STREAM INTERNAL_ERROR, which connect-node's handler turns into an
 * Internal abort reason) were recorded as Internal, and handlers that ignore
 * the signal, or end a stream quietly when it aborts (Health/Watch), as OK.
 * A handler that runs past the caller's deadline after an early cancel is
 * recorded as DeadlineExceeded: it did outlast the deadline.
 * Undefined when the call was not aborted (every well-behaved call).
 */
function callerLeft(req: AnyRequest, elapsedMs: number): ConnectError | undefined {
  const state = (req as { [ABORT_STATE]?: AbortState })[ABORT_STATE];
  let reason: unknown;
  if (state !== undefined) {
    reason = state.abortReason;
    if (reason === undefined) return undefined;
  } else {
    if (!req.signal.aborted) return undefined;
    reason = req.signal.reason;
  }
  if (reason instanceof ConnectError && reason.code === Code.DeadlineExceeded) return reason;
  return callerGone(deadlineOf(req, elapsedMs));
}

/** When the caller's deadline passes (ms since the epoch), from its request's timeout header, if it sent one. */
function deadlineOf(req: AnyRequest, elapsedMs: number): number | undefined {
  const grpc = req.header.get("grpc-timeout");
  const connect = grpc === null ? req.header.get("connect-timeout-ms") : null;
  if (grpc === null && connect === null) return undefined;
  const { timeoutMs } = grpc !== null ? parseGrpcTimeout(grpc, Infinity) : parseConnectTimeout(connect, Infinity);
  return timeoutMs === undefined ? undefined : Date.now() - elapsedMs + timeoutMs;
}

/** Code names as grpc-go prints them, which Prometheus dashboards expect. */
export function codeName(code: Code): string {
  return Code[code];
}

/** grpc_type as go-grpc-prometheus labels it. */
export function rpcType(req: AnyRequest): string {
  switch (req.method.methodKind) {
    case "unary":
      return "unary";
    case "server_streaming":
      return "server_stream";
    case "client_streaming":
      return "client_stream";
    default:
      return "bidi_stream";
  }
}

/** Which wire protocol the caller used, from its content type. */
export function protocolOf(req: AnyRequest): string {
  return protocolOfContentType(req.header.get("content-type") ?? undefined);
}

/** The same, from a raw content type (Connect GET requests have none). */
export function protocolOfContentType(type: string | undefined): string {
  if (type?.startsWith("application/grpc-web")) return "grpc-web";
  if (type?.startsWith("application/grpc")) return "grpc";
  return "connect";
}
