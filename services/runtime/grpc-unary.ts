import http2 from "node:http2";
import { create, fromBinary, isMessage, type DescMethodUnary, type DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createServiceImplSpec,
  type ConnectRouter,
  type ContextKey,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import {
  COMPRESSED_FLAG,
  ENVELOPE_HEADER_BYTES as HEADER_BYTES,
  LAZY_HEADERS,
  copyHeadersInto,
  http2RequestHeaders,
  responseHeaders,
  type LazyHeaders,
} from "./grpc-wire.js";
import { encodeBinaryEnveloped } from "./codec/binary-encoder.js";
import { COMPRESSED_WITHOUT_ENCODING, notAMessage } from "./decoding.js";
import { callerGone } from "./errors.js";
import { ABORT_STATE } from "./interceptors/outcome.js";
import { sharedGetters } from "./shared-getters.js";
import { LazyCallSignal } from "./call-signal.js";

/**
 * The unary gRPC fast path.
 *
 * connect-node answers every protocol through one async-iterable pipeline,
 * which for a unary gRPC call costs about 7x what @grpc/grpc-js spends
 * (bench/README.md has the profile). Unary gRPC is the mesh's hot path
 * (service to service), so those calls are answered here, directly on the
 * HTTP/2 stream: read one length-prefixed message, decode it, run the SAME
 * interceptors and handler functions connect would, and write headers,
 * one DATA frame and trailers. Anything this path does not handle itself
 * (other content types, compression, streaming methods, HTTP/1.1, Connect,
 * gRPC-Web) is left to connect-node, so there is exactly one behaviour per
 * protocol feature and the fast path never has to be complete.
 */
export class GrpcUnaryFastPath {
  private readonly methods = new Map<string, UnaryMethod>();
  /** Every path a service routes (any method kind), to tell "unknown method" from "not for us". */
  private readonly routed = new Set<string>();
  /** Calls answered here; read by tests to prove the path is taken. */
  calls = 0;

  constructor(
    private readonly interceptors: readonly Interceptor[],
    private readonly limits: { maxRequestBytes: number; maxDeadlineMs: number },
  ) {}

  /**
   * Wraps a router so that every service routed through it is also known
   * to the fast path, with the same implementation object.
   */
  recording(router: ConnectRouter): ConnectRouter {
    const wrapped: ConnectRouter = {
      get handlers() {
        return router.handlers;
      },
      service: (desc, impl, options) => {
        this.add(desc, impl as Record<string, unknown>);
        router.service(desc, impl, options);
        return wrapped;
      },
      rpc: (method, impl, options) => {
        this.add(method.parent, { [method.localName]: impl });
        router.rpc(method, impl, options);
        return wrapped;
      },
    };
    return wrapped;
  }

  private add(desc: DescService, impl: Record<string, unknown>) {
    const spec = createServiceImplSpec(desc, impl as Parameters<typeof createServiceImplSpec>[1]);
    for (const method of desc.methods) {
      const path = `/${desc.typeName}/${method.name}`;
      this.routed.add(path);
      // Methods the implementation leaves out stay with connect (it answers Unimplemented).
      if (method.methodKind !== "unary" || typeof impl[method.localName] !== "function") continue;
      const m = spec.methods[method.localName] as MethodImplSpec & { kind: "unary" };
      const target = { service: desc, method: m.method as DescMethodUnary, impl: m.impl as UnaryMethod["impl"] };
      this.methods.set(path, { ...target, invoke: chain(this.interceptors, target.impl) });
    }
  }

  /**
   * Takes the stream when it is a unary gRPC call this path answers (or a
   * gRPC call to a method no service routes); returns false to leave it to
   * connect-node.
   */
  handle(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): boolean {
    const type = headers["content-type"];
    if (type !== "application/grpc" && type !== "application/grpc+proto") return false;
    if (headers[":method"] !== "POST") return false;
    const encoding = headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false; // connect decompresses
    const path = headers[":path"] ?? "";
    const method = this.methods.get(path);
    if (method === undefined) {
      if (this.routed.has(path)) return false;
      // gRPC asks for UNIMPLEMENTED in a 200 response, not a 404.
      this.calls++;
      respondError(stream, type, new ConnectError(`${path} is not implemented`, Code.Unimplemented));
      stream.on("data", ignore);
      return true;
    }
    this.calls++;
    new UnaryCall(stream, headers, type, method, this.limits).start();
    return true;
  }
}

interface UnaryMethod {
  service: DescService;
  method: DescMethodUnary;
  impl: (req: unknown, ctx: HandlerContext) => unknown;
  /** The interceptors around the handler, composed once: a call only passes its request through. */
  invoke: (req: UnaryRequest) => Promise<UnaryResponse>;
}

/**
 * connect's ContextValues as a class: createContextValues() returns an
 * object literal with three new closures per call. Values live on the
 * object under their keys' symbols, as in connect's.
 */
class CallValues implements ContextValues {
  get<T>(key: ContextKey<T>): T {
    return key.id in this ? (this as unknown as Record<symbol, T>)[key.id]! : key.defaultValue;
  }
  set<T>(key: ContextKey<T>, value: T): this {
    (this as unknown as Record<symbol, T>)[key.id] = value;
    return this;
  }
  delete(key: ContextKey<unknown>): this {
    delete (this as unknown as Record<symbol, unknown>)[key.id];
    return this;
  }
}

/**
 * What a handler sees of its call, as a class (getters on the prototype):
 * an object literal with getters and a closure cost an allocation each per
 * call. Nobody copies a HandlerContext, so no getter is lost to a spread.
 */
class CallContext implements HandlerContext {
  readonly protocolName = "grpc";
  constructor(
    private readonly call: UnaryCall,
    private readonly req: UnaryRequest,
  ) {}
  get method() {
    return this.req.method;
  }
  get service() {
    return this.req.service;
  }
  get requestMethod() {
    return this.req.requestMethod;
  }
  get url() {
    return this.req.url;
  }
  get requestHeader() {
    return this.req.header;
  }
  get values() {
    return this.req.contextValues;
  }
  get signal() {
    return this.req.signal;
  }
  timeoutMs(): number | undefined {
    return this.call.timeoutMs();
  }
  get responseHeader() {
    return this.call.responseHeaderOrNew;
  }
  get responseTrailer() {
    return this.call.responseTrailerOrNew;
  }
}

/** The call a request belongs to, for the innermost step of the composed chain. */
const CALL = Symbol("unary call");
type CallRequest = UnaryRequest & { [CALL]: UnaryCall; [ABORT_STATE]: LazyCallSignal };

/**
 * Composes the interceptors around a method's handler the way connect's
 * applyInterceptors does (the first is the outermost), once per method:
 * composing per call made a closure per interceptor per call. The handler
 * step finds its call on the request (interceptors pass it on, or a copy
 * of it with `...req`).
 */
function chain(interceptors: readonly Interceptor[], impl: UnaryMethod["impl"]): UnaryMethod["invoke"] {
  // Not async: each promise costs twice over while AsyncLocalStorage
  // (the trace context) tracks promises; the handler's own is enough.
  const handler = (r: UnaryRequest): Promise<UnaryResponse> => {
    const call = (r as CallRequest)[CALL];
    const out = impl(r.message, new CallContext(call, r));
    return isThenable(out) ? Promise.resolve(out).then((o) => call.response(o)) : Promise.resolve(call.response(out));
  };
  let next = handler;
  for (let i = interceptors.length - 1; i >= 0; i--) next = interceptors[i]!(next as never) as never;
  return next;
}

type CallResponse = UnaryResponse & LazyHeaders & { [CALL]: UnaryCall };

// A call's lazy request and response members, shared by every call (shared-getters.ts).
// The url is a plain string: building it costs less than defining a getter per call.
const withRequestGetters = sharedGetters<CallRequest>({
  signal() {
    return this[CALL].cancel.signal;
  },
});
const withResponseGetters = sharedGetters<CallResponse>({
  header() {
    return this[CALL].responseHeaderOrNew;
  },
  trailer() {
    return this[CALL].responseTrailerOrNew;
  },
});
function headersMade(this: CallResponse, key: "header" | "trailer"): boolean {
  return (key === "header" ? this[CALL].responseHeader : this[CALL].responseTrailer) !== undefined;
}
// The reason a finished call's signal carries, allocated once: aborting
// with no reason makes Node build a DOMException with a stack every time.
const CALL_OVER = new ConnectError("the call is over", Code.Canceled);

/** One unary call on one HTTP/2 stream, from the request's first byte to the trailers. */
class UnaryCall {
  private chunks: Buffer[] = [];
  private received = 0;
  /** Length of the one message, once its 5-byte prefix arrived. */
  private expected = -1;
  private answered = false;
  /** The call's cancellation; its AbortSignal is made only if a handler or interceptor reads it. */
  readonly cancel = new LazyCallSignal();
  private deadline: NodeJS.Timeout | undefined;
  private deadlineAt = 0;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    private readonly headers: http2.IncomingHttpHeaders,
    private readonly contentType: string,
    private readonly target: UnaryMethod,
    private readonly limits: { maxRequestBytes: number; maxDeadlineMs: number },
  ) {}

  start() {
    const timeout = parseTimeout((this.headers["grpc-timeout"] as string | undefined) ?? null, this.limits.maxDeadlineMs);
    if (timeout.error) return this.fail(timeout.error);
    if (timeout.timeoutMs !== undefined) {
      this.deadlineAt = Date.now() + timeout.timeoutMs;
      this.deadline = setTimeout(() => this.expire(), timeout.timeoutMs);
    }
    this.stream.on("data", (chunk: Buffer) => this.onData(chunk));
    this.stream.on("end", () => this.onEnd());
    this.stream.on("close", () => this.onClose());
    // Errors (a reset by the client) end in "close"; without a listener they would throw.
    this.stream.on("error", ignore);
  }

  private onData(chunk: Buffer) {
    if (this.answered) return; // an error was sent already: drain what the client still sends
    this.received += chunk.length;
    this.chunks.push(chunk);
    if (this.expected < 0 && this.received >= HEADER_BYTES) {
      const head = this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks);
      this.expected = head.readUInt32BE(1);
      if (this.expected > this.limits.maxRequestBytes) {
        return this.fail(
          new ConnectError(`message size ${this.expected} is larger than configured readMaxBytes ${this.limits.maxRequestBytes}`, Code.ResourceExhausted),
        );
      }
    }
    // A second message behind the first: connect's wording and code for it.
    if (this.expected >= 0 && this.received >= 2 * HEADER_BYTES + this.expected) {
      this.fail(new ConnectError("protocol error: received extra input message for unary method", Code.Unimplemented));
    }
  }

  private onEnd() {
    if (this.answered) return;
    if (this.received === 0) {
      return this.fail(new ConnectError("protocol error: missing input message for unary method", Code.Unimplemented));
    }
    if (this.received !== HEADER_BYTES + this.expected) {
      return this.fail(new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument));
    }
    const body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.chunks = [];
    if ((body[0]! & COMPRESSED_FLAG) !== 0) {
      // No grpc-encoding (or identity) was announced: the caller's mistake, as on the connect-node path (decoding.ts).
      return this.fail(new ConnectError(COMPRESSED_WITHOUT_ENCODING, Code.InvalidArgument));
    }
    let message;
    try {
      message = fromBinary(this.target.method.input, body.subarray(HEADER_BYTES));
    } catch (err) {
      // Bytes that are not the request message are the caller's mistake (connect-go says so too).
      return this.fail(new ConnectError(notAMessage(this.target.method.input, err), Code.InvalidArgument));
    }
    let answer: Promise<UnaryResponse>;
    try {
      answer = this.invoke(message);
    } catch (err) {
      // An interceptor or handler that throws before returning its promise.
      answer = Promise.reject(err);
    }
    answer.then(
      (res) => this.respond(res),
      (err: unknown) => this.fail(err instanceof ConnectError ? err : new ConnectError("internal error", Code.Internal, undefined, undefined, err)),
    );
  }

  /** The stream closed: answered, or reset by the client (cancelled, or its deadline passed). */
  private onClose() {
    clearTimeout(this.deadline);
    if (!this.answered) {
      this.answered = true;
      // The client reset the stream: Canceled, or DeadlineExceeded when it
      // gave up at its deadline (its timer runs a little ahead of ours).
      this.cancel.abort(callerGone(this.deadlineAt === 0 ? undefined : this.deadlineAt));
    } else {
      this.cancel.abort(CALL_OVER);
    }
  }

  private expire() {
    const err = new ConnectError("the operation timed out", Code.DeadlineExceeded);
    this.cancel.abort(err);
    this.fail(err);
  }

  responseHeader: Headers | undefined;
  responseTrailer: Headers | undefined;

  get url(): string {
    return `http://${this.headers[":authority"] ?? this.headers.host ?? "localhost"}${this.headers[":path"]}`;
  }

  /** Runs the interceptors and the handler exactly as connect's invokeUnaryImplementation does. */
  private invoke(message: unknown): Promise<UnaryResponse> {
    const { service, method } = this.target;
    const req = {
      stream: false,
      service,
      method,
      requestMethod: "POST",
      url: this.url,
      header: http2RequestHeaders(this.headers),
      contextValues: new CallValues(),
      message: message as UnaryRequest["message"],
      [CALL]: this,
      [ABORT_STATE]: this.cancel,
    };
    return this.target.invoke(withRequestGetters(req) as unknown as CallRequest);
  }

  /** Milliseconds left before the caller's deadline, if it sent one. */
  timeoutMs(): number | undefined {
    return this.deadlineAt === 0 ? undefined : this.deadlineAt - Date.now();
  }

  get responseHeaderOrNew(): Headers {
    return (this.responseHeader ??= new Headers());
  }

  get responseTrailerOrNew(): Headers {
    return (this.responseTrailer ??= new Headers());
  }

  /** The handler's answer as connect's response; header and trailer are made only if someone reads them. */
  response(out: unknown): UnaryResponse {
    const { service, method } = this.target;
    const res = {
      stream: false,
      service,
      method,
      message: (isMessage(out, method.output) ? out : create(method.output, out as never)) as UnaryResponse["message"],
      [LAZY_HEADERS]: headersMade,
      [CALL]: this,
    };
    return withResponseGetters(res) as unknown as CallResponse;
  }

  private respond(res: UnaryResponse) {
    if (this.answered || this.stream.destroyed) return;
    this.answered = true;
    clearTimeout(this.deadline);
    // Header and message in one exact-size buffer, without toBinary's reflect/chunk garbage.
    const frame = encodeBinaryEnveloped(res.method.output, res.message);
    const trailers: http2.OutgoingHttpHeaders = { "grpc-status": "0" };
    // Read through the response's own getters, so untouched ones stay unallocated.
    const header = responseHeaders(res, "header");
    const trailer = responseHeaders(res, "trailer");
    if (trailer) copyHeadersInto(trailers, trailer);
    trailers["grpc-status"] = "0";
    const head: http2.OutgoingHttpHeaders = { ":status": 200, "content-type": this.contentType };
    if (header) copyHeadersInto(head, header);
    this.stream.respond(head, RESPONSE_WITH_TRAILERS);
    // Emitted once per stream: on() spares once()'s wrapper and its state per call.
    this.stream.on("wantTrailers", () => this.stream.sendTrailers(trailers));
    this.stream.end(frame);
  }

  private fail(err: ConnectError) {
    if (this.answered || this.stream.destroyed) return;
    this.answered = true;
    clearTimeout(this.deadline);
    this.chunks = [];
    // Headers and trailers the handler set before it failed go out with the error, as connect-node sends them.
    respondError(this.stream, this.contentType, err, this.responseHeader, this.responseTrailer);
  }
}

// gRPC has no use for HTTP's Date header (grpc-go and grpc-java send none), which node adds to
// every response unless `sendDate` is false (node's own compatibility API sets it so; a null
// date header does not stop it). One header less for the client to decode per response.
const RESPONSE_WITH_TRAILERS = { waitForTrailers: true, sendDate: false };
const TRAILERS_ONLY_RESPONSE = { endStream: true, sendDate: false };

/** A trailers-only response carrying the error's status, message, details and metadata (and the call's headers and trailers). */
function respondError(stream: http2.ServerHttp2Stream, contentType: string, err: ConnectError, header?: Headers, trailer?: Headers) {
  if (stream.destroyed) return;
  const head: http2.OutgoingHttpHeaders = { ":status": 200, "content-type": contentType };
  if (header) copyHeadersInto(head, header);
  copyHeadersInto(head, setTrailerStatus(new Headers(trailer), err));
  stream.respond(head, TRAILERS_ONLY_RESPONSE);
}

function ignore() {}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | undefined)?.then === "function";
}
