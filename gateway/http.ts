import type http from "node:http";
import type http2 from "node:http2";

/** Both servers of the one port (HTTP/1.1 and HTTP/2) hand us these. */
export type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

/** The request path without the query, exactly as sent (no dot-segment normalisation). */
export function pathOf(req: NodeRequest): string {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  return q < 0 ? url : url.slice(0, q);
}

export function queryOf(req: NodeRequest): URLSearchParams {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  return new URLSearchParams(q < 0 ? "" : url.slice(q + 1));
}

/** Incoming headers as a Fetch `Headers` (HTTP/2 pseudo-headers left out). */
export function headersOf(req: NodeRequest): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith(":") || value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  return headers;
}

export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`request body larger than ${limit} bytes`);
  }
}

/**
 * The whole request body, refusing more than `limit` bytes: at once when
 * Content-Length says so, else as soon as the count passes it. The caller
 * answers 413 right away; the server drops the unread rest afterwards.
 */
export async function readBody(req: NodeRequest, limit: number): Promise<Buffer> {
  if (Number(req.headers["content-length"]) > limit) throw new BodyTooLargeError(limit);
  const body = await readBoundedBody(req, limit);
  if (body.complete) return body.bytes;
  req.resume(); // nobody reads the rest: let it flow to nowhere, as the server drops it
  throw new BodyTooLargeError(limit);
}

/** Sends a complete response (unless the client went away or it was already begun). */
export function send(res: NodeResponse, status: number, headers: Record<string, string>, body: string | Buffer): void {
  if (res.writableEnded || res.destroyed) return;
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { ...headers, "content-length": String(Buffer.byteLength(body)) });
  res.end(body);
}

/** A body read whole, or the stream of a body over the limit: the chunks read so far, then the rest. */
export type BoundedBody = { complete: true; bytes: Buffer } | { complete: false; replay: AsyncIterable<Uint8Array> };

/**
 * The request body up to `limit` bytes. Past the limit it stops reading
 * and hands back the whole body as a stream (what was read, then the
 * rest, unread), for a handler that answers oversized bodies itself.
 */
export function readBoundedBody(req: NodeRequest, limit: number): Promise<BoundedBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      chunks.push(chunk);
      if (size > limit) {
        cleanup();
        req.pause();
        resolve({ complete: false, replay: replay(chunks, req) });
      }
    };
    const onEnd = () => {
      cleanup();
      resolve({ complete: true, bytes: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) });
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}

async function* replay(read: Buffer[], rest: AsyncIterable<Buffer>): AsyncGenerator<Uint8Array> {
  yield* read;
  yield* rest;
}
