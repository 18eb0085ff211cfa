// Raw requests for every protocol a service port (or the edge) speaks,
// written by hand so that they can be wrong in ways no client library
// would produce; and the outcome of each as one word: a gRPC code name
// ("InvalidArgument"), "http-<status>" when the answer carried no code,
// or "reset"/"timeout" when there was no answer at all.
import http from "node:http";
import http2 from "node:http2";
import { Code } from "@connectrpc/connect";

export type Protocol = "grpc" | "grpc-web" | "connect-json" | "connect-proto" | "connect-get" | "rest";

export interface RawRequest {
  protocol: Protocol;
  httpMethod: "GET" | "POST";
  /** Path and query, e.g. "/myevents.v1.EventService/GetEvent". */
  path: string;
  headers: Record<string, string>;
  body: Uint8Array;
}

const TIMEOUT_MS = 10_000;

/** gRPC length-prefixed message: flag byte, 4-byte big-endian length, payload. */
export function envelope(payload: Uint8Array, flags = 0, declaredLength = payload.length): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, declaredLength >>> 0);
  out.set(payload, 5);
  return out;
}

/** Sends requests over one HTTP/2 connection and one keep-alive HTTP/1.1 agent per origin. */
export class RawClient {
  private session?: http2.ClientHttp2Session;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

  constructor(private readonly origin: string) {}

  /** The outcome and, for diagnosis, the error message that came with it. */
  async send(req: RawRequest): Promise<{ outcome: string; detail: string }> {
    // gRPC needs HTTP/2; the rest is sent over HTTP/1.1 (what browsers through an edge use)
    // except Connect binary, which goes over HTTP/2 too so both paths are fuzzed.
    const h2 = req.protocol === "grpc" || req.protocol === "connect-proto";
    const res = await (h2 ? this.sendH2(req) : this.sendH1(req)).catch((err: Error) => err);
    if (res instanceof Error) return { outcome: res.message === "timeout" ? "timeout" : "reset", detail: `${res.name}: ${res.message}` };
    return { outcome: classify(req.protocol, res), detail: detailOf(res) };
  }

  close(): void {
    this.session?.close();
    this.agent.destroy();
  }

  private h2session(): http2.ClientHttp2Session {
    if (!this.session || this.session.closed || this.session.destroyed) {
      this.session = http2.connect(this.origin);
      this.session.on("error", () => {}); // surfaces on the streams
    }
    return this.session;
  }

  private sendH2(req: RawRequest): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const stream = this.h2session().request({ ":method": req.httpMethod, ":path": req.path, ...req.headers });
      const chunks: Buffer[] = [];
      let headers: Record<string, string> = {};
      let trailers: Record<string, string> = {};
      const timer = setTimeout(() => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        reject(new Error("timeout"));
      }, TIMEOUT_MS);
      stream.on("response", (h) => (headers = flat(h)));
      stream.on("trailers", (t) => (trailers = flat(t)));
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        clearTimeout(timer);
        resolve({ status: Number(headers[":status"] ?? 0), headers, trailers, body: Buffer.concat(chunks) });
      });
      stream.on("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      stream.end(req.body);
    });
  }

  private sendH1(req: RawRequest): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const url = new URL(this.origin);
      const r = http.request(
        { host: url.hostname, port: url.port, method: req.httpMethod, path: req.path, headers: req.headers, agent: this.agent, timeout: TIMEOUT_MS },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: flat(res.headers), trailers: flat(res.trailers), body: Buffer.concat(chunks) }));
          res.on("error", reject);
        },
      );
      r.on("timeout", () => r.destroy(new Error("timeout")));
      r.on("error", reject);
      r.end(req.httpMethod === "GET" ? undefined : req.body);
    });
  }
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  trailers: Record<string, string>;
  body: Uint8Array;
}

function flat(h: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(",") : String(v);
  return out;
}

/** The outcome as a gRPC code name, per the protocol's rules for where the code travels. */
export function classify(protocol: Protocol, res: Answer): string {
  switch (protocol) {
    case "grpc": {
      const status = res.trailers["grpc-status"] ?? res.headers["grpc-status"];
      return status !== undefined ? codeName(Number(status)) : `http-${res.status}`;
    }
    case "grpc-web": {
      const status = res.headers["grpc-status"] ?? grpcWebTrailerStatus(res.body);
      return status !== undefined ? codeName(Number(status)) : `http-${res.status}`;
    }
    case "rest": {
      if (res.status === 200) return "OK";
      const code = jsonField(res.body, "code");
      return typeof code === "number" ? codeName(code) : `http-${res.status}`;
    }
    default: {
      // Connect streams answer 200 and put the outcome in the end-of-stream message.
      if (res.status === 200 && (res.headers["content-type"] ?? "").startsWith("application/connect+")) return connectEndStreamCode(res.body);
      if (res.status === 200) return "OK";
      const code = jsonField(res.body, "code");
      return typeof code === "string" ? codeName(codeFromConnect(code)) : `http-${res.status}`;
    }
  }
}

/** The code in a Connect stream's end-of-stream message (flag 0x02): its error, else OK. */
function connectEndStreamCode(body: Uint8Array): string {
  let at = 0;
  while (at + 5 <= body.length) {
    const flags = body[at]!;
    const len = new DataView(body.buffer, body.byteOffset + at + 1, 4).getUint32(0);
    if (flags & 0x02) {
      const error = jsonField(body.subarray(at + 5, at + 5 + len), "error") as { code?: unknown } | undefined;
      return typeof error?.code === "string" ? codeName(codeFromConnect(error.code)) : error === undefined ? "OK" : "bad-end-stream";
    }
    at += 5 + len;
  }
  return "no-end-stream";
}

function grpcWebTrailerStatus(body: Uint8Array): string | undefined {
  let at = 0;
  while (at + 5 <= body.length) {
    const flags = body[at]!;
    const len = new DataView(body.buffer, body.byteOffset + at + 1, 4).getUint32(0);
    if (flags & 0x80) {
      const text = Buffer.from(body.subarray(at + 5, at + 5 + len)).toString("latin1");
      return /^grpc-status:\s*(\d+)/im.exec(text)?.[1];
    }
    at += 5 + len;
  }
  return undefined;
}

function jsonField(body: Uint8Array, name: string): unknown {
  try {
    return (JSON.parse(Buffer.from(body).toString("utf8")) as Record<string, unknown>)[name];
  } catch {
    return undefined;
  }
}

function codeFromConnect(code: string): number {
  const camel = code.replace(/(^|_)([a-z])/g, (_, __, c: string) => c.toUpperCase());
  const value = (Code as unknown as Record<string, number>)[camel];
  return value ?? -1;
}

export function codeName(code: number): string {
  return code === 0 ? "OK" : (Code[code] ?? `code-${code}`);
}

function detailOf(res: Answer): string {
  const message = res.trailers["grpc-message"] ?? res.headers["grpc-message"];
  if (message !== undefined) return decodeURIComponent(message);
  return Buffer.from(res.body.subarray(0, 300)).toString("latin1");
}
