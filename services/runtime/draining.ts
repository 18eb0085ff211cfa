import { once } from "node:events";
import type http from "node:http";
import http2 from "node:http2";
import type { Socket } from "node:net";
import { DualProtocolListener, type StreamTaker } from "./listener.js";

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

/**
 * The one-port listener (h2c and HTTP/1.1) plus what a graceful stop
 * needs: the requests in flight, the sockets and HTTP/2 sessions. Used by
 * every service (startService) and by the gateway.
 */
export class DrainingServer {
  readonly listener: DualProtocolListener;
  private inFlight = 0;
  private idle: (() => void) | undefined;
  private stopping = false;
  private readonly sockets = new Set<Socket>();
  private readonly sessions = new Set<http2.Http2Session>();

  constructor(
    handler: (req: NodeRequest, res: NodeResponse) => void,
    /** How long the unread rest of an HTTP/1.1 request body may keep arriving after the response (see discardUnread). */
    private readonly discardTimeoutMs = 10_000,
    /** Answers some HTTP/2 streams directly (the unary gRPC fast path); counted in flight the same way. */
    takeStream?: StreamTaker,
  ) {
    const taker: StreamTaker | undefined = takeStream && ((stream, headers) => {
      if (!takeStream(stream, headers)) return false;
      this.inFlight++;
      // "close" comes once per stream: a shared listener, not a once() wrapper and a closure per call.
      stream.on("close", this.streamClosed);
      return true;
    });
    this.listener = new DualProtocolListener((req, res) => {
      this.inFlight++;
      res.once("close", () => this.settled());
      if (req.httpVersionMajor === 1) {
        // While draining, HTTP/1.1 clients are told not to reuse the connection.
        if (this.stopping) res.setHeader("connection", "close");
        const socket = req.socket; // detached from req by the time the response finished
        res.once("finish", () => discardUnread(req as http.IncomingMessage, socket, this.discardTimeoutMs));
      } else {
        const stream = (req as http2.Http2ServerRequest).stream;
        stream.once("finish", () => resetUnread(stream));
      }
      handler(req, res);
    }, taker);
    this.listener.tcp.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
    });
    this.listener.h2.on("session", (session: http2.Http2Session) => {
      this.sessions.add(session);
      session.once("close", () => this.sessions.delete(session));
    });
  }

  private readonly streamClosed = () => this.settled();

  private settled() {
    if (--this.inFlight === 0) this.idle?.();
  }

  get requestsInFlight(): number {
    return this.inFlight;
  }

  async listen(port: number, host: string): Promise<number> {
    this.listener.tcp.listen(port, host);
    await once(this.listener.tcp, "listening");
    return (this.listener.tcp.address() as { port: number }).port;
  }

  /**
   * Stops accepting connections, sends GOAWAY to HTTP/2 clients, lets the
   * requests in flight finish for up to `timeoutMs`, then closes every
   * connection. Resolves true when it had to cut requests short.
   */
  async drain(timeoutMs: number): Promise<boolean> {
    this.stopping = true;
    this.listener.tcp.close();
    for (const session of this.sessions) session.close();
    let cut = false;
    if (this.inFlight > 0) {
      const finished = new Promise<false>((resolve) => (this.idle = () => resolve(false)));
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<true>((resolve) => (timer = setTimeout(resolve, timeoutMs, true)));
      cut = await Promise.race([finished, timedOut]);
      clearTimeout(timer);
    }
    for (const socket of this.sockets) socket.destroy();
    return cut;
  }
}

/**
 * After the response, drops what is left of an HTTP/1.1 request body (a
 * message refused for its size, a body nobody wanted), so that the client
 * can finish sending, read the answer and reuse the connection. Closing the
 * connection instead makes clients that are still sending fail with EPIPE
 * before they read the answer; doing nothing leaves the connection stuck
 * when the body's reader gave up mid-way (connect-node at its size limit),
 * since its backpressure keeps the socket paused. A body still arriving
 * after `timeoutMs` gets the connection closed.
 */
function discardUnread(req: http.IncomingMessage, socket: Socket, timeoutMs: number): void {
  if (req.complete) return;
  // Node's own way to drop an unread body (which it applies by itself
  // only when no one began reading): the parser then discards each chunk
  // instead of pushing it and pausing the socket.
  const dump = (req as unknown as { _dump?: () => void })._dump;
  if (typeof dump !== "function") {
    socket.destroy();
    return;
  }
  dump.call(req);
  socket.resume();
  setTimeout(() => {
    if (!req.complete) socket.destroy();
  }, timeoutMs).unref();
}

/**
 * After an HTTP/2 response, asks the client to stop sending a request it has
 * not finished (a stream answered early, e.g. for a message over the size
 * limit): RST_STREAM with NO_ERROR, as RFC 9113 8.1 provides and grpc-go and
 * connect-go do. Without it nobody reads the rest, the client's messages
 * fill the flow-control window and it blocks. Only once the response's last
 * frame (END_STREAM) is out: nghttp2 sends RST_STREAM ahead of queued DATA,
 * and a reset before it makes clients fail the call they were answered.
 * Checked every 10 ms for up to a second (a client that reads nothing may
 * keep the last frame from going out; then it is left as before).
 */
function resetUnread(stream: http2.ServerHttp2Stream, checksLeft = 100): void {
  if (stream.closed || stream.destroyed || stream.readableEnded) return;
  if (stream.state.localClose) {
    stream.close(http2.constants.NGHTTP2_NO_ERROR);
  } else if (checksLeft > 0) {
    setTimeout(resetUnread, 10, stream, checksLeft - 1).unref();
  }
}
