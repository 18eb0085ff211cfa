import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { useGcFriendlyStreamTables } from "./http2-streams.js";

type Handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

/** Sees each HTTP/2 stream first; returns true when it answers the stream itself. */
export type StreamTaker = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => boolean;

// Every cleartext HTTP/2 connection starts with this preface (RFC 9113 §3.4).
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * One TCP port for HTTP/2 cleartext (gRPC, Connect, gRPC-Web) and HTTP/1.1
 * (Connect, gRPC-Web from browsers and curl). Node's cleartext HTTP/2
 * server cannot fall back to HTTP/1.1 by itself, so the first bytes of each
 * connection decide which server gets it.
 */
export class DualProtocolListener {
  readonly tcp: net.Server;
  readonly h2: http2.Http2Server;
  readonly h1: http.Server;

  constructor(handler: Handler, takeStream?: StreamTaker) {
    this.h2 = http2.createServer({}, handler);
    // Node's own stream tables made every finished stream outlive two scavenges (http2-streams.ts).
    this.h2.on("session", (session: http2.ServerHttp2Session) => useGcFriendlyStreamTables(session));
    if (takeStream) {
      // Node's request/response compatibility layer is itself a "stream"
      // listener; calling it only for the streams the taker leaves means
      // the taken ones never pay for the request/response objects.
      const compat = this.h2.listeners("stream") as Array<(...args: unknown[]) => void>;
      this.h2.removeAllListeners("stream");
      this.h2.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, ...rest: unknown[]) => {
        if (takeStream(stream, headers)) return;
        for (const listener of compat) listener.call(this.h2, stream, headers, ...rest);
      });
    }
    this.h1 = http.createServer(handler);
    // HTTP/1.1 keep-alive longer than typical load balancer idle timeouts.
    this.h1.keepAliveTimeout = 65_000;
    this.tcp = net.createServer((socket) => {
      socket.once("data", (first) => {
        socket.pause();
        socket.unshift(first);
        if (startsLikePreface(first)) {
          // Node's HTTP/2 session reads data already buffered on the socket
          // itself; resuming here would hand it to nobody.
          this.h2.emit("connection", socket);
        } else {
          this.h1.emit("connection", socket);
          socket.resume();
        }
      });
      socket.on("error", () => socket.destroy());
    });
  }
}

function startsLikePreface(chunk: Buffer): boolean {
  const n = Math.min(chunk.length, PREFACE.length);
  return n > 0 && chunk.subarray(0, n).equals(PREFACE.subarray(0, n));
}
