// A minimal HTTP/1.1 keep-alive client for scenario (b)'s load: it writes the
// bytes a browser's connect-web sends (the same request line, content type,
// protocol header and body as connect-node's client) on plain sockets, one
// call at a time per connection, and reads the answer with no more parsing
// than checking it. connect-node's client spent 400-590 µs of CPU per call
// on the same two cores as the gateway and the service it measured (more than
// both together), so (b) measured mostly the client; a load generator should
// cost little next to what it loads (as h2load or wrk do). Only what the
// gateway's answer must hold is checked: status 200, the body's length, and
// the event id in the decoded message (and grpc-status 0 for gRPC-Web).
import { connect, type Socket } from "node:net";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { GetEventRequestSchema, GetEventResponseSchema } from "../gen/myevents/v1/event_service_pb.js";
import { encodeEnvelope } from "../services/runtime/grpc-wire.js";

export type Http1Protocol = "connect-json" | "grpc-web";

const HEADER_END = Buffer.from("\r\n\r\n");
const GRPC_STATUS_OK = /grpc-status: ?0\r\n/;

/** One connection; `call` sends the prepared request and resolves to the event id of the answer. */
class Connection {
  private readonly socket: Socket;
  private buffered: Buffer = Buffer.alloc(0);
  private pending?: { resolve: (id: string | undefined) => void; reject: (err: Error) => void };

  constructor(
    port: number,
    private readonly protocol: Http1Protocol,
  ) {
    this.socket = connect({ host: "127.0.0.1", port, noDelay: true });
    this.socket.on("data", (chunk: Buffer) => this.onData(chunk));
    const fail = (err: Error) => {
      this.pending?.reject(err);
      this.pending = undefined;
    };
    this.socket.on("error", fail);
    this.socket.on("close", () => fail(new Error("connection closed")));
  }

  call(request: Buffer): Promise<string | undefined> {
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(request);
    });
  }

  close() {
    this.socket.destroy();
  }

  private onData(chunk: Buffer) {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const end = this.buffered.indexOf(HEADER_END);
    if (end < 0) return;
    const head = this.buffered.toString("latin1", 0, end + 2);
    const length = /\r\ncontent-length: ?(\d+)\r\n/i.exec(head);
    if (!head.startsWith("HTTP/1.1 200") || length === null) return this.fail(`unexpected answer: ${head.split("\r\n")[0]}`);
    const bodyStart = end + HEADER_END.length;
    const bodyEnd = bodyStart + Number(length[1]);
    if (this.buffered.length < bodyEnd) return;
    const body = this.buffered.subarray(bodyStart, bodyEnd);
    this.buffered = this.buffered.subarray(bodyEnd);
    const pending = this.pending;
    this.pending = undefined;
    try {
      pending?.resolve(this.protocol === "connect-json" ? JSON.parse(body.toString("utf8")).event?.id : grpcWebEventId(body));
    } catch (err) {
      pending?.reject(err as Error);
    }
  }

  private fail(why: string) {
    this.pending?.reject(new Error(why));
    this.pending = undefined;
    this.socket.destroy();
  }
}

/** The event id in a gRPC-Web answer: one message frame, then a trailer frame with grpc-status 0. */
function grpcWebEventId(body: Buffer): string | undefined {
  const length = body.readUInt32BE(1);
  const trailer = body.subarray(5 + length);
  if (body[0] !== 0 || trailer[0] !== 0x80 || !GRPC_STATUS_OK.test(trailer.toString("latin1", 5))) throw new Error("not a successful gRPC-Web answer");
  return fromBinary(GetEventResponseSchema, body.subarray(5, 5 + length)).event?.id;
}

/** GetEvent over keep-alive connections, each carrying one call at a time: as many as calls run at once. */
export function http1GetEventCaller(port: number, protocol: Http1Protocol) {
  const path = "/myevents.v1.EventService/GetEvent";
  const pool: Connection[] = [];
  const idle: Connection[] = [];
  const requests = new Map<string, Buffer>();
  const requestFor = (id: string): Buffer => {
    let request = requests.get(id);
    if (request === undefined) {
      // What connect-web sends (connect-node's client sends the same headers).
      const body =
        protocol === "connect-json"
          ? Buffer.from(JSON.stringify({ id }))
          : encodeEnvelope(toBinary(GetEventRequestSchema, create(GetEventRequestSchema, { id })));
      const headers =
        protocol === "connect-json"
          ? "content-type: application/json\r\nconnect-protocol-version: 1\r\n"
          : "content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\nx-user-agent: connect-es/2\r\n";
      request = Buffer.concat([Buffer.from(`POST ${path} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n${headers}content-length: ${body.length}\r\n\r\n`), body]);
      requests.set(id, request);
    }
    return request;
  };
  return {
    async getEvent(id: string): Promise<string | undefined> {
      let connection = idle.pop();
      if (connection === undefined) pool.push((connection = new Connection(port, protocol)));
      // A connection that failed is dropped (its socket is closed), not reused.
      const answer = await connection.call(requestFor(id));
      idle.push(connection);
      return answer;
    },
    close: () => pool.forEach((c) => c.close()),
  };
}
