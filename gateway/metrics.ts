import { Code, createContextKey } from "@connectrpc/connect";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { codeName, protocolOf, type CallObserver, type RpcObserver } from "../services/runtime/interceptors/outcome.js";
import type { Logger } from "../services/runtime/logger.js";
import type { NodeRequest, NodeResponse } from "./http.js";

/**
 * What one request through the gateway was, filled in by whoever handles
 * it: the RPC interceptor, the REST transcoder or the static files.
 * Labels stay bounded: routes are RPC paths or REST templates, never raw
 * request paths.
 */
export interface RequestRecord {
  /** "/myevents.v1.EventService/GetEvent", "GET /v1/events/{id}", "static", "unmatched", "preflight". */
  route: string;
  /** "connect", "grpc", "grpc-web", "rest", "static", "cors". */
  protocol: string;
  /** gRPC code name ("OK", "NotFound", ...) once known. */
  code?: string;
  /** Set when an interceptor already logged the call. */
  logged?: boolean;
  /** Set while the response closed before that interceptor settled the code: counts the request once it has. */
  settled?: () => void;
  /** The request's trace, for its log line (written when the response closes, outside the trace). */
  trace?: { trace_id: string; span_id: string };
}

/** The request's record, for interceptors (through the adapter's context values). */
export const recordKey = createContextKey<RequestRecord | undefined>(undefined, { description: "gateway request record" });

export class GatewayMetrics {
  private readonly requests: Counter<"route" | "protocol" | "code">;
  private readonly duration: Histogram<"route" | "protocol">;
  private readonly inFlight: Gauge;

  constructor(registry: Registry, private readonly logger: Logger) {
    this.requests = new Counter({
      name: "gateway_requests_total",
      help: "Requests answered by the gateway, by route, protocol and gRPC code.",
      labelNames: ["route", "protocol", "code"],
      registers: [registry],
    });
    this.duration = new Histogram({
      name: "gateway_request_duration_seconds",
      help: "Time from a request's arrival until its response ended (a stream's whole life), by route and protocol.",
      labelNames: ["route", "protocol"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    });
    this.inFlight = new Gauge({
      name: "gateway_requests_in_flight",
      help: "Requests (and open streams) the gateway is answering right now.",
      registers: [registry],
    });
  }

  /** Starts the record of a request; counted and timed when its response closes. */
  track(req: NodeRequest, res: NodeResponse): RequestRecord {
    const record: RequestRecord = { route: "unmatched", protocol: "http" };
    const start = process.hrtime.bigint();
    this.inFlight.inc();
    res.once("close", () => {
      this.inFlight.dec();
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      // The caller went away mid-RPC (the response never ended): the RPC's
      // interceptors settle its code a moment later, once the abort has
      // reached the upstream call; count it then, so this counter agrees
      // with the RPC's log line and grpc_server_handled_total.
      // (Should it never settle, it counts as Canceled after a while.)
      if (record.code === undefined && record.logged && !res.writableEnded) {
        let counted = false;
        record.settled = () => {
          if (counted) return;
          counted = true;
          this.count(req, res, record, record.code ?? codeName(Code.Canceled), seconds);
        };
        setTimeout(record.settled, 5_000).unref();
        return;
      }
      // writableEnded too: an HTTP/2 response reset by the client reads as writableFinished.
      this.count(req, res, record, record.code ?? (res.writableEnded && res.writableFinished ? codeFromResponse(res) : codeName(Code.Canceled)), seconds);
    });
    return record;
  }

  private count(req: NodeRequest, res: NodeResponse, record: RequestRecord, code: string, seconds: number) {
    this.requests.inc({ route: record.route, protocol: record.protocol, code });
    this.duration.observe({ route: record.route, protocol: record.protocol }, seconds);
    if (!record.logged) {
      const fields = { ...record.trace, method: req.method, route: record.route, protocol: record.protocol, status: res.statusCode, code, duration_ms: Math.round(seconds * 1e6) / 1e3 };
      // REST calls and refused requests are worth a line; static files are noise.
      if (record.protocol === "static") this.logger.debug("http", fields);
      else this.logger.info("http", fields);
    }
  }
}

/**
 * Completes the record of an RPC (Connect, gRPC, gRPC-Web) with its exact
 * code, once it is really over (a stream at its end): an observer of the
 * shared observability interceptor, after its log line, so the call is
 * timed and its outcome (a caller that went away included) worked out once.
 */
export function requestRecord(): RpcObserver {
  const ignored: CallObserver = { done() {} };
  return (req) => {
    const record = req.contextValues.get(recordKey);
    if (!record) return ignored;
    record.route = `/${req.service.typeName}/${req.method.name}`;
    record.protocol = protocolOf(req);
    record.logged = true;
    return {
      done({ code }) {
        record.code = code;
        record.settled?.();
      },
    };
  };
}

// For requests that ended before any handler saw them (bad content type,
// oversized body): the best the response itself tells.
function codeFromResponse(res: NodeResponse): string {
  const grpcStatus = Number(res.getHeader("grpc-status"));
  if (Number.isInteger(grpcStatus) && Code[grpcStatus] !== undefined) return codeName(grpcStatus);
  const status = res.statusCode;
  if (status < 400) return "OK";
  const byStatus: Record<number, Code> = {
    400: Code.InvalidArgument,
    401: Code.Unauthenticated,
    403: Code.PermissionDenied,
    404: Code.NotFound,
    408: Code.DeadlineExceeded,
    409: Code.AlreadyExists,
    413: Code.ResourceExhausted,
    415: Code.InvalidArgument,
    429: Code.ResourceExhausted,
    499: Code.Canceled,
    501: Code.Unimplemented,
    503: Code.Unavailable,
    504: Code.DeadlineExceeded,
  };
  return codeName(byStatus[status] ?? (status >= 500 ? Code.Internal : Code.InvalidArgument));
}
