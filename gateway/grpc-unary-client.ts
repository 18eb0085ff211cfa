import http2 from "node:http2";
import { fromBinary, type DescMethodUnary, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeFromHttpStatus, findTrailerError } from "@connectrpc/connect/protocol-grpc";
import type { Http2SessionManager } from "@connectrpc/connect-node";
import type { CallSignal } from "../services/runtime/call-signal.js";
import { encodeBinaryEnveloped } from "../services/runtime/codec/binary-encoder.js";
import { useGcFriendlyStreamTables } from "../services/runtime/http2-streams.js";
import { COMPRESSED_FLAG, ENVELOPE_HEADER_BYTES as HEADER_BYTES, webHeaders } from "../services/runtime/grpc-wire.js";

/**
 * One unary gRPC call straight on an HTTP/2 stream of the upstream's
 * shared session: one envelope out, one in, the status from the trailers
 * (or a trailers-only answer) read with connect's own findTrailerError.
 * connect-node's gRPC transport does the same through its async-iterable
 * pipeline, which was half of the gateway's cost per call (bench/README.md).
 * Streams keep using the transport.
 */
export async function grpcUnary(
  sessions: Http2SessionManager,
  /** The upstream URL's path, "" for most ("http://events:50051"). */
  basePath: string,
  method: DescMethodUnary,
  signal: CallSignal,
  timeoutMs: number | undefined,
  header: Headers,
  input: Message,
): Promise<Message> {
  // Encoded straight into its envelope: one buffer, no copy.
  const output = await grpcUnaryBinary(sessions, basePath, method, signal, timeoutMs, header, encodeBinaryEnveloped(method.input, input));
  try {
    return fromBinary(method.output, output);
  } catch (err) {
    throw new ConnectError(`parse binary: ${err instanceof Error ? err.message : String(err)}`, Code.Internal);
  }
}

/**
 * The same call with the request message already in protobuf binary, in its
 * gRPC envelope (`encodeEnvelope`); resolves to the response message's bytes,
 * undecoded (the gateway passes them on).
 */
export async function grpcUnaryBinary(
  sessions: Http2SessionManager,
  basePath: string,
  method: DescMethodUnary,
  signal: CallSignal,
  timeoutMs: number | undefined,
  header: Headers,
  frame: Uint8Array,
): Promise<Uint8Array> {
  if (signal.aborted) throw ConnectError.from(signal.reason);
  const path = `${basePath}/${method.parent.typeName}/${method.name}`;
  const headers: http2.OutgoingHttpHeaders = { ":method": "POST", ":path": path, "content-type": "application/grpc+proto", te: "trailers" };
  header.forEach((value, key) => (headers[key] = value));
  if (timeoutMs !== undefined) headers["grpc-timeout"] = `${Math.max(1, Math.ceil(timeoutMs))}m`;
  const stream = await sessions.request("POST", path, headers, {});
  gcFriendly(stream.session);
  return new Promise<Uint8Array>((resolve, reject) => {
    let settled = false;
    let status = 0;
    let head: http2.IncomingHttpHeaders | undefined;
    let trailers: http2.IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    const finish = (err: ConnectError | undefined, message?: Uint8Array) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stopListening();
      if (err) {
        if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
        reject(err);
      } else resolve(message!);
    };
    const stopListening = signal.onAbort(() => finish(ConnectError.from(signal.reason)));
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => finish(new ConnectError("the operation timed out", Code.DeadlineExceeded)), timeoutMs);
    stream.on("response", (h) => {
      head = h;
      status = Number(h[":status"]);
    });
    stream.on("trailers", (t) => (trailers = t));
    stream.on("data", (chunk: Buffer) => {
      sessions.notifyResponseByteRead(stream);
      chunks.push(chunk);
    });
    stream.on("error", (err: Error) => finish(ConnectError.from(err, Code.Unavailable)));
    stream.on("close", () => {
      if (settled) return;
      if (head === undefined) return finish(new ConnectError(`http/2 stream closed with code ${stream.rstCode}`, Code.Unavailable));
      if (status !== 200) return finish(new ConnectError(`HTTP ${status}`, codeFromHttpStatus(status), webHeaders(head)));
      // Trailers-only answers carry the status in the headers.
      const statusRaw = trailers ?? head;
      // The usual answer, plain OK, needs no Headers built to say so.
      if (!isPlainOk(statusRaw)) {
        const statusFields = webHeaders(statusRaw);
        const error = findTrailerError(statusFields);
        if (error) return finish(error);
        if (!statusFields.has("grpc-status")) return finish(new ConnectError("protocol error: missing status", Code.Internal));
      }
      const body = Buffer.concat(chunks);
      if (body.length < HEADER_BYTES || body.readUInt32BE(1) !== body.length - HEADER_BYTES || (body[0]! & COMPRESSED_FLAG) !== 0) {
        return finish(new ConnectError("protocol error: expected one uncompressed response message", Code.Internal));
      }
      finish(undefined, body.subarray(HEADER_BYTES));
    });
    stream.end(frame);
  });
}

// Each upstream session gets the stream tables that keep finished streams out of old space (http2-streams.ts).
const swapped = new WeakSet<http2.Http2Session>();
function gcFriendly(session: http2.Http2Session | undefined) {
  if (session === undefined || swapped.has(session)) return;
  swapped.add(session);
  useGcFriendlyStreamTables(session);
}

/**
 * grpc-status exactly "0" and no grpc-status-details-bin: what
 * findTrailerError reads as no error, with the status present.
 */
export function isPlainOk(fields: http2.IncomingHttpHeaders): boolean {
  return fields["grpc-status"] === "0" && fields["grpc-status-details-bin"] === undefined;
}
