import { fromBinary, fromJsonString, type DescMethodUnary, type DescService, type Message } from "@bufbuild/protobuf";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createContextKey, type ContextValues, type Interceptor, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";
import { compressionNegotiate, envelopeCompress, type Compression } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, errorToJsonBytes, parseTimeout as parseConnectTimeout, trailerMux } from "@connectrpc/connect/protocol-connect";
import { parseTimeout as parseGrpcTimeout, setTrailerStatus, trailerFlag, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import { encodeBinary } from "../services/runtime/codec/binary-encoder.js";
import { encodeJsonBytes } from "../services/runtime/codec/json-encoder.js";
import { ENVELOPE_HEADER_BYTES, LAZY_HEADERS, copyHeadersInto, encodeEnvelope, http2RequestHeaders, responseHeaders, type LazyHeaders } from "../services/runtime/grpc-wire.js";
import { callerGone } from "../services/runtime/errors.js";
import { ABORT_STATE } from "../services/runtime/interceptors/outcome.js";
import { LazyCallSignal, callSignalOf } from "../services/runtime/call-signal.js";
import { sharedGetters } from "../services/runtime/shared-getters.js";
import type { Forwarder } from "./forward.js";
import { pathOf, queryOf, readBoundedBody, type NodeRequest, type NodeResponse } from "./http.js";

/** The request forms this path answers; everything else goes to connect-node. */
type Protocol = "connect-json" | "connect-proto" | "grpc-web";

export interface UnaryFastPathOptions {
  /** The gateway's server interceptors, the same list connect-node runs, first outermost. */
  interceptors: readonly Interceptor[];
  maxRequestBytes: number;
  /** What the gateway offers for responses (the same list connect-node is given). */
  acceptCompression: readonly Compression[];
  /** The call's context values (request record, client address), as for connect-node. */
  contextValues(req: NodeRequest): ContextValues;
  /** connect-node, for a request this path read but leaves to it (`body`: the whole body, as read). */
  fallback(req: NodeRequest, res: NodeResponse, body?: AsyncIterable<Uint8Array>): void;
}

// Connect's default: smaller messages are not worth compressing.
const COMPRESS_MIN_BYTES = 1024;
// connect-node's adapter is given no maximum: only the forwarder caps deadlines.
const NO_MAX_TIMEOUT = Number.MAX_SAFE_INTEGER;
const GRPC_WEB_CONTENT_TYPE = "application/grpc-web+proto";
// A successful gRPC-Web call's trailer frame, as connect serializes it.
const OK_TRAILER_FRAME = encodeEnvelope(trailerSerialize(new Headers({ "grpc-status": "0" })), trailerFlag);

/** When the caller's deadline passes (ms since the epoch), for the forwarder inside the interceptors. */
const deadlineKey = createContextKey<number | undefined>(undefined, { description: "the caller's deadline" });
/** A binary caller's request message as it sent it, forwarded as it is. */
const requestBytesKey = createContextKey<Uint8Array | undefined>(undefined, { description: "the request message's bytes" });

interface Route {
  method: DescMethodUnary;
  /** The method may be called with GET (Connect, NO_SIDE_EFFECTS). */
  get: boolean;
  /** The interceptors around the forwarder, composed once: the request and response decoded (JSON), or passed on as bytes (binary). */
  call: Record<"decoded" | "binary", (req: UnaryRequest) => Promise<UnaryResponse>>;
}

/**
 * The gateway's unary fast path on the caller's side.
 *
 * connect-node's server pipeline (async iterables, abort signals, its
 * universal request and response) was most of the gateway's CPU per call
 * (bench/README.md, finding 5). For the calls browsers make most, unary
 * Connect (POST JSON or binary, GET) and gRPC-Web (binary), this answers
 * on node's request and response directly: read the body, decode the one
 * message, run the SAME interceptors (logs, metrics, tracing, rate limit,
 * errors) around the same forwarder, and write the answer with connect's
 * own error serializers. Only well-formed requests are answered here:
 * anything else (compressed requests, gRPC-Web text, streams, other
 * content types, a bad timeout header, a declared body over the limit)
 * goes to connect-node untouched, and a body that turns out not to decode
 * (bad JSON, bytes that are not the message, a malformed envelope, a
 * chunked body past the limit) is handed to connect-node with the bytes
 * already read, so every protocol error still has one implementation.
 * Binary callers' messages pass through: the request goes upstream as it
 * was sent (decoded once, to refuse what is not the message), the
 * service's answer comes back as bytes.
 */
export class UnaryFastPath {
  private readonly routes = new Map<string, Route>();
  /** Calls answered here, and requests read here but answered by connect-node; read by tests. */
  readonly counts = { answered: 0, handedOver: 0 };

  constructor(
    services: readonly DescService[],
    forwarder: Forwarder,
    private readonly options: UnaryFastPathOptions,
  ) {
    for (const service of services) {
      for (const method of service.methods) {
        if (method.methodKind !== "unary") continue;
        const unary = method as DescMethodUnary;
        const callInfo = (req: UnaryRequest) => {
          const deadline = req.contextValues.get(deadlineKey);
          return { header: req.header, signal: callSignalOf(req, (req as { [ABORT_STATE]?: LazyCallSignal })[ABORT_STATE]), deadline };
        };
        const decoded = async (req: UnaryRequest) => lazyResponse(unary, await forwarder.unary(unary, req.message, callInfo(req)));
        // The gateway's interceptors observe and refuse, they never swap the
        // request message: the bytes the caller sent are that message.
        const binary = async (req: UnaryRequest) => {
          const bytes = await forwarder.unaryBinary(unary, req.contextValues.get(requestBytesKey) ?? encodeBinary(unary.input, req.message), callInfo(req));
          return lazyResponse(unary, undefined, bytes);
        };
        const intercepted = (handler: (req: UnaryRequest) => Promise<UnaryResponse>) => {
          let call = handler;
          for (let i = options.interceptors.length - 1; i >= 0; i--) call = options.interceptors[i]!(call as never) as never;
          return call;
        };
        this.routes.set(`/${service.typeName}/${method.name}`, {
          method: unary,
          get: method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS,
          call: { decoded: intercepted(decoded), binary: intercepted(binary) },
        });
      }
    }
  }

  /** Answers the request when it is a unary call this path takes; false leaves it to connect-node. */
  handle(req: NodeRequest, res: NodeResponse): boolean {
    const route = this.routes.get(pathOf(req));
    if (route === undefined) return false;
    // connect-node needs an authority to build the request URL; without one, its answer.
    const authority = "authority" in req ? req.authority : req.headers.host;
    if (!authority) return false;
    const headers = req.headers;
    let protocol: Protocol;
    let compression: Compression | null;
    let timeout: { timeoutMs?: number; error?: ConnectError };
    if (req.method === "POST") {
      switch (headers["content-type"]) {
        case "application/json":
        case "application/json; charset=utf-8":
          protocol = "connect-json";
          break;
        case "application/proto":
          protocol = "connect-proto";
          break;
        case "application/grpc-web":
        case "application/grpc-web+proto":
          protocol = "grpc-web";
          break;
        default:
          return false;
      }
      // A body declared too large is refused by connect-node's size checks
      // before it is read; one that grows too large on the way is handed
      // to them (chunked bodies: connect-node's HTTP/1.1 client sends those).
      const framing = protocol === "grpc-web" ? ENVELOPE_HEADER_BYTES : 0;
      const limit = this.options.maxRequestBytes + framing;
      if (Number(headers["content-length"] ?? 0) > limit) return false;
      if (protocol === "grpc-web") {
        if (!isIdentity(headers["grpc-encoding"])) return false;
        compression = this.negotiate(headers["grpc-accept-encoding"], "grpc-accept-encoding");
        timeout = parseGrpcTimeout(single(headers["grpc-timeout"]), NO_MAX_TIMEOUT);
      } else {
        if (!isIdentity(headers["content-encoding"])) return false;
        compression = this.negotiate(headers["accept-encoding"], "accept-encoding");
        timeout = parseConnectTimeout(single(headers["connect-timeout-ms"]), NO_MAX_TIMEOUT);
      }
      if (timeout.error) return false;
      // As in connect, the deadline runs from the request's arrival, so it covers a slow body too.
      const deadline = deadlineOf(timeout.timeoutMs);
      readBoundedBody(req, limit).then(
        (body) => {
          if (body.complete) return this.answer(req, res, route, protocol, compression, deadline, authority, body.bytes);
          this.counts.handedOver++;
          this.options.fallback(req, res, body.replay);
        },
        // The client went away mid-body: nobody is left to answer.
        () => res.destroy(),
      );
      return true;
    }
    if (req.method === "GET" && route.get) {
      const query = queryOf(req);
      const encoding = query.get("encoding");
      if (encoding !== "json" && encoding !== "proto") return false;
      if (query.has("compression")) return false;
      protocol = encoding === "json" ? "connect-json" : "connect-proto";
      compression = this.negotiate(headers["accept-encoding"], "accept-encoding");
      timeout = parseConnectTimeout(single(headers["connect-timeout-ms"]), NO_MAX_TIMEOUT);
      if (timeout.error) return false;
      const text = query.get("message") ?? "";
      let body: Uint8Array;
      try {
        // As connect-node reads it: base64url with base64=1, else the text's UTF-8 bytes.
        body = query.get("base64") === "1" ? base64Decode(text) : Buffer.from(text);
      } catch {
        return false;
      }
      this.answer(req, res, route, protocol, compression, deadlineOf(timeout.timeoutMs), authority, body);
      return true;
    }
    return false;
  }

  private negotiate(accepted: string | string[] | undefined, header: string): Compression | null {
    if (accepted === undefined) return null;
    return compressionNegotiate(this.options.acceptCompression as Compression[], null, single(accepted), header).response;
  }

  private answer(
    req: NodeRequest,
    res: NodeResponse,
    route: Route,
    protocol: Protocol,
    compression: Compression | null,
    deadline: number | undefined,
    authority: string,
    body: Uint8Array,
  ): void {
    const message = decode(route.method, protocol, body);
    if (message === undefined) {
      // Not a message: connect-node answers it from the same bytes, with its own error.
      this.counts.handedOver++;
      return this.options.fallback(req, res, req.method === "GET" ? undefined : once(body));
    }
    this.counts.answered++;
    const signal = new LazyCallSignal();
    let answered = false;
    res.once("close", () => {
      // Canceled, or DeadlineExceeded when the client gave up at its deadline.
      if (!answered) signal.abort(callerGone(deadline));
    });
    const contextValues = this.options.contextValues(req);
    if (deadline !== undefined) contextValues.set(deadlineKey, deadline);
    const binary = protocol !== "connect-json";
    if (binary) contextValues.set(requestBytesKey, protocol === "grpc-web" ? body.subarray(ENVELOPE_HEADER_BYTES) : body);
    const fields = {
      stream: false,
      service: route.method.parent,
      method: route.method,
      requestMethod: req.method!,
      url: `http://${authority}${req.url}`,
      // Read from node's header object until someone changes or lists them: the interceptors read two or three.
      header: http2RequestHeaders(req.headers),
      contextValues,
      message: message as UnaryRequest["message"],
      // The call's cancellation: the forwarder's, and the observing interceptor's to tell whether
      // the caller went away without making the signal (a spread copy of the request keeps it).
      [ABORT_STATE]: signal,
    };
    const request = withRequestGetters(fields) as unknown as UnaryRequest;
    route.call[binary ? "binary" : "decoded"](request).then(
      (response) => {
        answered = true;
        return write(res, protocol, compression, response, undefined);
      },
      (err: unknown) => {
        answered = true;
        return write(res, protocol, compression, undefined, err instanceof ConnectError ? err : new ConnectError("internal error", Code.Internal, undefined, undefined, err));
      },
    ).catch(() => {
      // Writing failed: the client is gone, nothing left to tell it.
      res.destroy();
    });
  }
}

/** The request message, or undefined when the bytes are not one (connect-node then says why). */
function decode(method: DescMethodUnary, protocol: Protocol, body: Uint8Array): Message | undefined {
  try {
    switch (protocol) {
      case "connect-json":
        return fromJsonString(method.input, Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8"));
      case "connect-proto":
        return fromBinary(method.input, body);
      case "grpc-web": {
        // Exactly one uncompressed message.
        if (body.length < ENVELOPE_HEADER_BYTES || body[0] !== 0) return undefined;
        const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
        if (view.getUint32(1) !== body.length - ENVELOPE_HEADER_BYTES) return undefined;
        return fromBinary(method.input, body.subarray(ENVELOPE_HEADER_BYTES));
      }
    }
  } catch {
    return undefined;
  }
}

/** Writes a call's answer (the response, or the error) in its protocol's form, as connect-node does. */
async function write(res: NodeResponse, protocol: Protocol, compression: Compression | null, response: UnaryResponse | undefined, error: ConnectError | undefined): Promise<void> {
  if (res.destroyed || res.writableEnded) return;
  const headers: Record<string, string | string[]> = {};
  let status = 200;
  let body: Uint8Array;
  if (protocol === "grpc-web") {
    headers["content-type"] = GRPC_WEB_CONTENT_TYPE;
    if (compression) headers["grpc-encoding"] = compression.name;
    if (response) {
      copyHeadersInto(headers, responseHeaders(response, "header"));
      const message = binaryOf(response);
      const out = worthCompressing(message, compression) ? await envelopeCompress({ flags: 0, data: message }, compression, COMPRESS_MIN_BYTES) : { flags: 0, data: message };
      const trailer = responseHeaders(response, "trailer");
      let trailerFrame = OK_TRAILER_FRAME;
      if (trailer) {
        const fields = new Headers({ "grpc-status": "0" });
        trailer.forEach((value, key) => fields.set(key, value));
        fields.set("grpc-status", "0");
        trailerFrame = await compressedFrame(trailerFlag, trailerSerialize(fields), compression);
      } else if (compression && OK_TRAILER_FRAME.length - ENVELOPE_HEADER_BYTES >= COMPRESS_MIN_BYTES) {
        trailerFrame = await compressedFrame(trailerFlag, OK_TRAILER_FRAME.subarray(ENVELOPE_HEADER_BYTES), compression);
      }
      body = Buffer.concat([encodeEnvelope(out.data, out.flags), trailerFrame]);
    } else {
      const trailer = setTrailerStatus(new Headers({ "grpc-status": "0" }), error);
      body = await compressedFrame(trailerFlag, trailerSerialize(trailer), compression);
    }
  } else {
    let header: Headers | undefined;
    if (response) {
      const binary = protocol === "connect-proto";
      headers["content-type"] = binary ? "application/proto" : "application/json";
      const extra = responseHeaders(response, "header");
      const trailer = responseHeaders(response, "trailer");
      if (extra || trailer) header = trailerMux(extra ?? new Headers(), trailer ?? new Headers());
      body = binary ? binaryOf(response) : encodeJsonBytes(response.method.output, response.message);
    } else {
      status = codeToHttpStatus(error!.code);
      headers["content-type"] = "application/json";
      header = new Headers();
      error!.metadata.forEach((value, key) => header!.set(key, value));
      body = errorToJsonBytes(error!, undefined);
    }
    if (header) copyHeadersInto(headers, header);
    if (worthCompressing(body, compression)) {
      body = await compression.compress(body);
      headers["content-encoding"] = compression.name;
    }
  }
  if (res.destroyed || res.writableEnded) return;
  headers["content-length"] = String(body.byteLength);
  res.writeHead(status, headers);
  res.end(body);
}

/** The response message's bytes as the service sent them, on responses made by lazyResponse. */
const BYTES = Symbol("bytes");
const DECODED = Symbol("decoded message");
const HEADER = Symbol("header");
const TRAILER = Symbol("trailer");
type LazyResponse = UnaryResponse & LazyHeaders & { [BYTES]?: Uint8Array; [DECODED]?: Message; [HEADER]?: Headers; [TRAILER]?: Headers };

// The lazy members of requests and responses, shared by every call (shared-getters.ts).
const withRequestGetters = sharedGetters<{ [ABORT_STATE]: LazyCallSignal }>({
  signal() {
    return this[ABORT_STATE].signal;
  },
});
const withResponseGetters = sharedGetters<LazyResponse>({
  message() {
    return (this[DECODED] ??= fromBinary(this.method.output, this[BYTES]!));
  },
  header() {
    return (this[HEADER] ??= new Headers());
  },
  trailer() {
    return (this[TRAILER] ??= new Headers());
  },
});
function headersMade(this: LazyResponse, key: "header" | "trailer"): boolean {
  return (key === "header" ? this[HEADER] : this[TRAILER]) !== undefined;
}

/**
 * A response whose header and trailer are only made when someone reads
 * them; given the message's bytes, the message is decoded only if someone
 * reads it (the interceptors do not).
 */
function lazyResponse(method: DescMethodUnary, message: Message | undefined, bytes?: Uint8Array): UnaryResponse {
  const fields = {
    stream: false,
    service: method.parent,
    method,
    [BYTES]: bytes,
    [DECODED]: message,
    [HEADER]: undefined,
    [TRAILER]: undefined,
    [LAZY_HEADERS]: headersMade,
  };
  return withResponseGetters(fields) as unknown as UnaryResponse;
}

/** The response message in protobuf binary: the service's own bytes when passed through untouched. */
function binaryOf(response: UnaryResponse): Uint8Array {
  const bytes = (response as Partial<LazyResponse>)[BYTES];
  // An interceptor that set another message (spreading the response turns the getter into a value) wins.
  if (bytes !== undefined && Object.getOwnPropertyDescriptor(response, "message")?.get !== undefined) return bytes;
  return encodeBinary(response.method.output, response.message);
}

async function compressedFrame(flags: number, data: Uint8Array, compression: Compression | null): Promise<Buffer> {
  if (!worthCompressing(data, compression)) return encodeEnvelope(data, flags);
  const env = await envelopeCompress({ flags, data }, compression, COMPRESS_MIN_BYTES);
  return encodeEnvelope(env.data, env.flags);
}

/** Connect's rule (compressMinBytes); checked first so that small answers are written without waiting a turn. */
function worthCompressing(data: Uint8Array, compression: Compression | null): compression is Compression {
  return compression !== null && data.byteLength >= COMPRESS_MIN_BYTES;
}

function deadlineOf(timeoutMs: number | undefined): number | undefined {
  return timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

function isIdentity(encoding: string | string[] | undefined): boolean {
  return encoding === undefined || encoding === "identity";
}

function single(value: string | string[] | undefined): string | null {
  return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value;
}
