import { gunzipSync, gzipSync } from "node:zlib";
import { fromBinary, type DescMessage } from "@bufbuild/protobuf";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { Code, ConnectError, createContextKey, createContextValues, type ConnectRouter, type ContextValues, type Interceptor } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerRequest } from "@connectrpc/connect/protocol";

/** Why a request's protobuf binary could not be decoded; undefined when it could. */
const undecodableKey = createContextKey<string | undefined>(undefined, { description: "why the request bytes are not a message" });

/**
 * connect-node answers Internal when a request's protobuf binary does not
 * decode ("parse binary: ...") or carries a compressed flag without an
 * encoding, because its decoder is shared with clients, where a bad
 * response is the server's fault. From a client it is the client's
 * mistake. So each binary request is decoded once here, before
 * connect-node sees it; bytes that are not a message are swapped for an
 * empty message and the reason is put in the call context, where
 * `undecodableInterceptor` turns it into InvalidArgument through the
 * protocol's own error path (trailers, Connect JSON error, gRPC-Web
 * trailer frame). JSON needs none of this: connect-node already answers
 * InvalidArgument for bad JSON. Used by the services and the gateway.
 */
export function rejectUndecodableRequests(router: ConnectRouter, readMaxBytes: number): void {
  router.handlers.forEach((handler, i) => {
    router.handlers[i] = Object.assign((req: UniversalServerRequest) => checked(handler, req, readMaxBytes), handler);
  });
}

/** Answers InvalidArgument for a request that rejectUndecodableRequests marked. */
export function undecodableInterceptor(): Interceptor {
  return (next) => (req) => {
    const problem = req.contextValues.get(undecodableKey);
    if (problem !== undefined) throw new ConnectError(problem, Code.InvalidArgument);
    // connect-node reads a server stream's request after the interceptors ran: checked as it is read.
    if (req.stream && req.method.methodKind === "server_streaming") return next({ ...req, message: checkedAsRead(req.message, req.contextValues) });
    return next(req);
  };
}

async function* checkedAsRead<T>(messages: AsyncIterable<T>, values: ContextValues): AsyncIterable<T> {
  for await (const message of messages) {
    const problem = values.get(undecodableKey);
    if (problem !== undefined) throw new ConnectError(problem, Code.InvalidArgument);
    yield message;
  }
}

async function checked(handler: UniversalHandler, req: UniversalServerRequest, readMaxBytes: number) {
  // Only calls whose whole request is one message: a bidi stream (e.g.
  // reflection) must not be read to its end before it is answered.
  const kind = handler.method.methodKind;
  if (kind !== "unary" && kind !== "server_streaming") return handler(req);
  const schema = handler.method.input;
  const contentType = (req.header.get("content-type") ?? "").toLowerCase();
  if (req.method === "GET") {
    const url = new URL(req.url);
    const params = url.searchParams;
    const binary = params.get("encoding") === "proto";
    if (!binary && !params.has("compression")) return handler(req);
    // As connect-node reads it: base64url with base64=1, else the text's UTF-8 bytes.
    const message = params.get("message") ?? "";
    let problem: string | undefined;
    try {
      const bytes = params.get("base64") === "1" ? base64Decode(message) : new TextEncoder().encode(message);
      problem = messageProblem(schema, bytes, params.get("compression") ?? "", readMaxBytes, binary);
    } catch {
      problem = "the message parameter is not valid base64url";
    }
    if (problem === undefined) return handler(req);
    // A stand-in that decodes (an empty message), so the interceptor answers with the problem.
    params.set("message", binary ? "" : "{}");
    params.delete("base64");
    params.delete("compression");
    return handler(withProblem({ ...req, url: url.toString() }, problem));
  }
  const enveloped = /^application\/(grpc|grpc-web|connect)(\+proto)?(;|$)/.test(contentType) || contentType === "application/grpc-web";
  // Connect streams of JSON: only their framing (a compressed flag) is checked; connect-node answers bad JSON itself.
  const jsonEnvelopes = /^application\/connect\+json(;|$)/.test(contentType);
  const unary = /^application\/proto(;|$)/.test(contentType);
  // Connect JSON is only checked for its compression: connect-node answers bad JSON itself.
  const json = /^application\/json(;|$)/.test(contentType) && (req.header.get("content-encoding") ?? "").trim() !== "";
  if ((!enveloped && !jsonEnvelopes && !unary && !json) || !isByteStream(req.body)) return handler(req);

  // The body is checked as connect-node reads it, not before: the call's
  // deadline must also cover a client that sends its body slowly.
  const contextValues = req.contextValues ?? createContextValues();
  const source = req.body;
  // A stand-in body (below) is shorter than the Content-Length the caller
  // sent, and connect-node would answer "protocol error: promised N bytes,
  // received 0" instead of the problem. Node's HTTP/1.1 parser and nghttp2
  // hold a body to its Content-Length anyway; one over the limit keeps it,
  // so connect-node refuses that body unread, as before.
  const header = (unary || json) && Number(req.header.get("content-length")) <= readMaxBytes ? withoutContentLength(req.header) : req.header;
  const body = async function* (): AsyncGenerator<Uint8Array> {
    const read = await readBounded(source, readMaxBytes + 5);
    if (!read.complete) {
      yield* read.replay; // too large: connect-node says ResourceExhausted
      return;
    }
    const problem =
      enveloped || jsonEnvelopes
        ? envelopeProblem(schema, read.bytes, encodingOf(req, contentType), readMaxBytes, !jsonEnvelopes)
        : messageProblem(schema, read.bytes, (req.header.get("content-encoding") ?? "").trim().toLowerCase(), readMaxBytes, !json);
    if (problem !== undefined) contextValues.set(undecodableKey, problem);
    // A stand-in that decodes (an empty message), so the interceptor answers with the problem.
    yield problem === undefined ? read.bytes : jsonEnvelopes ? EMPTY_JSON_ENVELOPE : enveloped ? new Uint8Array(5) : json ? EMPTY_JSON_GZIP : new Uint8Array();
  };
  return handler({ ...req, header, body: body(), contextValues });
}

function withoutContentLength(header: Headers): Headers {
  if (!header.has("content-length")) return header;
  const copy = new Headers(header);
  copy.delete("content-length");
  return copy;
}

function withProblem(req: UniversalServerRequest, problem: string): UniversalServerRequest {
  const contextValues = req.contextValues ?? createContextValues();
  contextValues.set(undecodableKey, problem);
  return { ...req, contextValues };
}

/** A message's bytes, possibly compressed: why they are not a message, or undefined. */
function messageProblem(schema: DescMessage, bytes: Uint8Array, encoding: string, readMaxBytes: number, binary = true): string | undefined {
  if (encoding === "" || encoding === "identity") return binary ? decodeProblem(schema, () => bytes) : undefined;
  if (encoding !== "gzip") return undefined; // unsupported encodings: connect-node answers Unimplemented
  let inflated: Uint8Array;
  try {
    inflated = gunzipSync(bytes, { maxOutputLength: readMaxBytes });
  } catch (err) {
    // Too large after decompression: connect-node answers ResourceExhausted itself.
    if ((err as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") return undefined;
    return "the request is not valid gzip";
  }
  return binary ? decodeProblem(schema, () => inflated) : undefined;
}

function decodeProblem(schema: DescMessage, bytes: () => Uint8Array): string | undefined {
  try {
    fromBinary(schema, bytes());
    return undefined;
  } catch (err) {
    return notAMessage(schema, err);
  }
}

/** The InvalidArgument message for bytes that are not `schema` (also the unary gRPC fast path's). */
export function notAMessage(schema: DescMessage, err: unknown): string {
  return `the request is not a valid ${schema.typeName} in protobuf binary (${err instanceof Error ? err.message : String(err)})`;
}

/** The InvalidArgument message for a compressed flag with no encoding to inflate it with. */
export const COMPRESSED_WITHOUT_ENCODING = "a message is flagged compressed but no message encoding was given";

/** "{}" gzipped: a compressed Connect JSON body's only problem can be its gzip (an empty body is not JSON). */
const EMPTY_JSON_GZIP = new Uint8Array(gzipSync("{}"));

/** "{}" in one uncompressed envelope. */
const EMPTY_JSON_ENVELOPE = Uint8Array.of(0, 0, 0, 0, 2, 0x7b, 0x7d);

/** Checks every complete envelope; incomplete framing is left to connect-node, which rejects it itself. */
function envelopeProblem(schema: DescMessage, bytes: Uint8Array, encoding: string, readMaxBytes: number, binary = true): string | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let at = 0; at + 5 <= bytes.length; ) {
    const flags = bytes[at]!;
    const end = at + 5 + view.getUint32(at + 1);
    if (end > bytes.length) return undefined;
    const payload = bytes.subarray(at + 5, end);
    if (flags & 1 && (encoding === "" || encoding === "identity")) return COMPRESSED_WITHOUT_ENCODING;
    const problem = messageProblem(schema, payload, flags & 1 ? encoding : "", readMaxBytes, binary);
    if (problem !== undefined) return problem;
    at = end;
  }
  return undefined;
}

function encodingOf(req: UniversalServerRequest, contentType: string): string {
  const name = contentType.startsWith("application/connect") ? "connect-content-encoding" : "grpc-encoding";
  return (req.header.get(name) ?? "").trim().toLowerCase();
}

function isByteStream(body: UniversalServerRequest["body"]): body is AsyncIterable<Uint8Array> {
  return typeof body === "object" && body !== null && Symbol.asyncIterator in body;
}

/** The body as one array when it fits in `max` bytes; otherwise what was read plus the rest, unchanged. */
async function readBounded(body: AsyncIterable<Uint8Array>, max: number) {
  const it = body[Symbol.asyncIterator]();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (let r = await it.next(); !r.done; r = await it.next()) {
    chunks.push(r.value);
    size += r.value.byteLength;
    if (size > max) {
      const replay = (async function* () {
        yield* chunks;
        for (let next = await it.next(); !next.done; next = await it.next()) yield next.value;
      })();
      return { complete: false as const, replay };
    }
  }
  return { complete: true as const, bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) };
}

