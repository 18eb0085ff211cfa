import { performance } from "node:perf_hooks";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { StreamRequest, StreamResponse, UnaryRequest, UnaryResponse } from "@connectrpc/connect";
import { inCurrentContext } from "../tracing.js";

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
export function observingInterceptor(observers: RpcObserver[]): Interceptor {
  return (next) => (req) => {
    const calls = observers.map((observer) => observer(req));
    let run = () =>
      observe(
        req,
        next,
        (outcome) => {
          for (const call of calls) call.done(outcome);
        },
        () => {
          for (const call of calls) call.sent?.();
        },
      );
    for (const call of calls) {
      if (!call.run) continue;
      const inner = run;
      run = () => call.run!(inner);
    }
    return run();
  };
}

/**
 * Runs `next` and reports the RPC's outcome once it is really over: for a
 * unary call when the response is ready, for a server stream when its last
 * message was sent (or it failed). Not an async function, and one promise
 * per call: while AsyncLocalStorage carries the trace context, every
 * promise costs a little on every call.
 */
export function observe(
  req: AnyRequest,
  next: (req: AnyRequest) => Promise<AnyResponse>,
  done: (outcome: RpcOutcome) => void,
  onSent?: () => void,
): Promise<AnyResponse> {
  const start = performance.now();
  const finish = (err?: unknown) => {
    const durationSeconds = (performance.now() - start) / 1e3;
    if (err === undefined) return done({ code: "OK", durationSeconds });
    const error = ConnectError.from(err);
    done({ code: codeName(error.code), durationSeconds, error });
  };
  let pending: Promise<AnyResponse>;
  try {
    pending = next(req);
  } catch (err) {
    finish(err);
    return Promise.reject(err);
  }
  return pending.then(
    (res) => {
      if (!res.stream) {
        onSent?.();
        finish();
        return res;
      }
      // Pulled later by the writer: keep each step in this call's context (its trace).
      return { ...res, message: inCurrentContext(watchStream(res.message, finish, onSent)) };
    },
    (err: unknown) => {
      finish(err);
      throw err;
    },
  );
}

async function* watchStream<T>(source: AsyncIterable<T>, finish: (err?: unknown) => void, onSent?: () => void) {
  try {
    for await (const message of source) {
      yield message;
      onSent?.();
    }
  } catch (err) {
    finish(err);
    throw err;
  }
  finish();
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
