import http from "node:http";
import http2 from "node:http2";
import net from "node:net";

type Handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

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

  constructor(handler: Handler) {
    this.h2 = http2.createServer({}, handler);
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
