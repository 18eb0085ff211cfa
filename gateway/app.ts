import { once } from "node:events";
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import { Registry, collectDefaultMetrics } from "prom-client";
import { BookingService } from "../gen/myevents/v1/booking_service_pb.js";
import { EventService } from "../gen/myevents/v1/event_service_pb.js";
import { NotificationService } from "../gen/myevents/v1/notification_service_pb.js";
import { createAdminServer } from "../services/runtime/admin.js";
import { EnvReader, readRuntimeConfig, type RuntimeConfig } from "../services/runtime/config.js";
import { HealthMonitor } from "../services/runtime/health.js";
import { tuneServiceProcess } from "../services/runtime/process-tuning.js";
import { rejectUndecodableRequests, undecodableInterceptor } from "../services/runtime/decoding.js";
import { clientObservabilityInterceptor, observabilityInterceptor } from "../services/runtime/interceptors/observability.js";
import { createLogger, type Logger } from "../services/runtime/logger.js";
import type { RunningService } from "../services/runtime/server.js";
import { CorsPolicy } from "./cors.js";
import { FORWARDED_HEADERS, Forwarder } from "./forward.js";
import { pathOf, send, type NodeRequest, type NodeResponse } from "./http.js";
import { DrainingServer } from "../services/runtime/draining.js";
import { protocolOfContentType } from "../services/runtime/interceptors/outcome.js";
import { GatewayMetrics, recordKey, requestRecord, type RequestRecord } from "./metrics.js";
import { RestTranscoder, restRoutes } from "./rest.js";
import { ClientRateLimit, clientAddressKey, readRateLimitConfig, tooManyRequests, type RateLimitConfig } from "./rate-limit.js";
import { createTokenVerifier } from "../services/runtime/auth/tokens.js";
import { errorJson } from "./errors.js";
import { StaticFiles } from "./static.js";
import { ACCEPT_COMPRESSION, connectHandler } from "./connect-handler.js";
import { UnaryFastPath } from "./unary-fast-path.js";
import { connectUpstream, upstreamDependency } from "./upstreams.js";

export type UpstreamName = "events" | "bookings" | "notifications";

/** The services behind the gateway: where each runs by default and what it serves. */
const UPSTREAMS: ReadonlyArray<{ name: UpstreamName; variable: string; fallback: string; services: readonly DescService[] }> = [
  { name: "events", variable: "EVENTS_URL", fallback: "http://127.0.0.1:50051", services: [EventService] },
  { name: "bookings", variable: "BOOKINGS_URL", fallback: "http://127.0.0.1:50052", services: [BookingService] },
  { name: "notifications", variable: "NOTIFICATIONS_URL", fallback: "http://127.0.0.1:50053", services: [NotificationService] },
];

export interface GatewayConfig {
  /** PORT 8080, ADMIN_PORT 9100, limits, deadlines, log level, shutdown and health timing. */
  runtime: RuntimeConfig;
  /** Base URL of each upstream; undefined ("none"): not deployed, its RPCs answer Unimplemented. */
  upstreams: Record<UpstreamName, string | undefined>;
  /** Origins allowed to call cross-origin (CORS); "*" allows any. */
  corsAllowedOrigins: string[];
  /** The web app's built files; served at / when the folder exists. */
  webRoot: string;
  /** Per-client request limit; undefined: off (RATE_LIMIT_PER_SECOND=0). */
  rateLimit?: RateLimitConfig;
  /** Unary Connect and gRPC-Web calls answered without connect-node's pipeline (GATEWAY_UNARY_FAST_PATH=on). */
  unaryFastPath: boolean;
}

const DEFAULT_ORIGINS = "http://localhost:8080,http://127.0.0.1:8080,http://localhost:5173";

/**
 * The gateway's configuration. `portPrefix` names the port variables when
 * it shares a process with the services (`npm start`): "GATEWAY_" reads
 * GATEWAY_PORT and GATEWAY_ADMIN_PORT.
 */
export function readGatewayConfig(env: EnvReader, portPrefix = ""): GatewayConfig {
  const runtime = readRuntimeConfig(env, { port: 8080, adminPort: 9100 }, portPrefix);
  const upstreams = {} as Record<UpstreamName, string | undefined>;
  for (const u of UPSTREAMS) {
    upstreams[u.name] = env.optionalString(u.variable) === "none" ? undefined : (env.optionalUrl(u.variable, ["http:", "https:"]) ?? u.fallback);
  }
  const corsAllowedOrigins: string[] = [];
  for (const entry of env.string("CORS_ALLOWED_ORIGINS", DEFAULT_ORIGINS).split(",").map((o) => o.trim()).filter(Boolean)) {
    const origin = parseOrigin(entry);
    if (origin) corsAllowedOrigins.push(origin);
    else env.problem("CORS_ALLOWED_ORIGINS", `must list origins like https://app.example.com (or "*"), got ${JSON.stringify(entry)}`);
  }
  // "off": every call through connect-node, an escape hatch should a client meet a difference.
  const unaryFastPath = env.oneOf("GATEWAY_UNARY_FAST_PATH", "on", ["on", "off"]) === "on";
  return { runtime, upstreams, corsAllowedOrigins, webRoot: env.string("WEB_ROOT", "web/dist"), rateLimit: readRateLimitConfig(env), unaryFastPath };
}

/** The peer's address: the gateway is the edge (behind a proxy, every client shares the proxy's). */
function addressOf(req: NodeRequest): string {
  return req.socket?.remoteAddress ?? "unknown";
}

function parseOrigin(entry: string): string | undefined {
  if (entry === "*") return entry;
  try {
    const url = new URL(entry);
    const bare = url.pathname === "/" && !url.search && !url.hash && !url.username;
    return bare && (url.protocol === "http:" || url.protocol === "https:") ? url.origin : undefined;
  } catch {
    return undefined;
  }
}

// "/package.Service/Method": an RPC path, never a web page.
const RPC_PATH = /^\/[A-Za-z_]\w*(\.[A-Za-z_]\w*)+\/[A-Za-z_]\w*$/;

export interface GatewayOptions {
  logger?: Logger;
  /** false: every RPC through connect-node whatever the configuration says (the tests compare both paths). */
  fastPath?: boolean;
}

export interface RunningGateway extends RunningService {
  /** The unary fast path on the caller's side, unless turned off; tests read its counts. */
  unaryFastPath?: UnaryFastPath;
}

/**
 * Starts the browser edge on one port: Connect (JSON and binary), gRPC-Web
 * and gRPC forwarded to the services over gRPC, REST transcoded from the
 * contracts' google.api.http annotations, the web app's files, CORS; and
 * the admin port (/metrics, /healthz, /readyz following the upstreams).
 */
export async function startGateway(config: GatewayConfig, options: GatewayOptions = {}): Promise<RunningGateway> {
  const { runtime } = config;
  const logger = options.logger ?? createLogger(runtime.logLevel, { service: "gateway" });
  tuneServiceProcess();
  const metrics = new Registry();
  metrics.setDefaultLabels({ service: "gateway" });
  collectDefaultMetrics({ register: metrics });

  // Each forwarded call is a client span (the services' parent) and counts in grpc_client_*.
  const clientInterceptors = [clientObservabilityInterceptor(metrics)];
  const upstreams = UPSTREAMS.flatMap((u) => {
    const url = config.upstreams[u.name];
    return url ? [connectUpstream(u.name, url, u.services, clientInterceptors)] : [];
  });
  const services = UPSTREAMS.flatMap((u) => u.services);
  // Ready only while every upstream is: an edge that cannot reach its
  // services should get no traffic.
  const health = new HealthMonitor(
    [],
    upstreams.map((u) => upstreamDependency(u, Math.min(runtime.healthCheckIntervalMs, 5_000))),
    runtime.healthCheckIntervalMs,
    logger,
  );

  const streamsStop = new AbortController();
  const forwarder = new Forwarder(services, upstreams, { maxDeadlineMs: runtime.maxDeadlineMs, logger, streamsStop: streamsStop.signal });
  const rest = new RestTranscoder(restRoutes(services), forwarder, { maxRequestBytes: runtime.maxRequestBytes, maxDeadlineMs: runtime.maxDeadlineMs });
  const cors = new CorsPolicy({ allowedOrigins: config.corsAllowedOrigins, extraMethods: rest.httpMethods, extraHeaders: FORWARDED_HEADERS });
  const files = StaticFiles.open(config.webRoot);
  const requests = new GatewayMetrics(metrics, logger);
  const records = new WeakMap<NodeRequest, RequestRecord>();
  // The services verify tokens; the gateway only reads a valid one's subject to key the limit.
  const limit = config.rateLimit && new ClientRateLimit(config.rateLimit, createTokenVerifier(runtime.auth, logger), metrics);

  // Everything that is not an RPC of the services: REST, unknown RPCs, files.
  const other = async (req: NodeRequest, res: NodeResponse) => {
    const record = records.get(req)!;
    const path = pathOf(req);
    const isRest = rest.owns(path);
    const wait = limit ? await limit.admit(req.headers.authorization ?? null, addressOf(req), isRest ? "rest" : "http") : 0;
    if (wait > 0) {
      // REST: the JSON error every REST failure has; anything else: plain text.
      const error = tooManyRequests(wait);
      record.code = Code[error.code];
      const [type, body] = isRest ? ["application/json", JSON.stringify(errorJson(error))] : ["text/plain", `${error.rawMessage}\n`];
      return send(res, 429, { "content-type": type, "retry-after": String(wait), "cache-control": "no-store" }, body);
    }
    if (isRest) return rest.handle(req, res, record);
    if (RPC_PATH.test(path)) {
      // Includes the upstreams' grpc.health.v1 and reflection: not exposed.
      // gRPC and Connect clients read 404 as Unimplemented.
      record.protocol = "rpc";
      return send(res, 404, { "content-type": "text/plain" }, "no such service or method\n");
    }
    record.route = "static";
    record.protocol = "static";
    return files.handle(req, res);
  };

  // As in the services: logging and metrics (and the request's record)
  // outermost, and they settle errors first (errorsInterceptor's mapping).
  // The fast path runs this same list.
  const interceptors = [observabilityInterceptor(logger, metrics, [requestRecord()], { settleErrors: true }), ...(limit ? [limit.interceptor()] : []), undecodableInterceptor()];
  const contextValues = (req: NodeRequest) => createContextValues().set(recordKey, records.get(req)).set(clientAddressKey, addressOf(req));
  const rpc = connectHandler({
    routes: (router) => {
      forwarder.register(router);
      rejectUndecodableRequests(router, runtime.maxRequestBytes);
    },
    interceptors,
    readMaxBytes: runtime.maxRequestBytes,
    acceptCompression: ACCEPT_COMPRESSION,
    contextValues,
    fallback: (req, res) => {
      other(req, res).catch((err: unknown) => {
        logger.error("request failed", { path: pathOf(req), error: err });
        send(res, 500, { "content-type": "text/plain" }, "internal error\n");
      });
    },
    logger,
  });
  // Unary Connect and gRPC-Web calls skip connect-node's pipeline (unary-fast-path.ts).
  const fastPath = options.fastPath === false || !config.unaryFastPath ? undefined : new UnaryFastPath(services, forwarder, {
    interceptors,
    maxRequestBytes: runtime.maxRequestBytes,
    acceptCompression: ACCEPT_COMPRESSION,
    contextValues,
    fallback: rpc,
  });

  const rpcPaths = new Set(services.flatMap((s) => s.methods.map((m) => `/${s.typeName}/${m.name}`)));
  const server = new DrainingServer((req, res) => {
    const record = requests.track(req, res);
    records.set(req, record);
    const path = pathOf(req);
    if (rpcPaths.has(path)) {
      // Known before any handler runs, so refusals (size, content type) count per route too.
      record.route = path;
      record.protocol = protocolOfContentType(req.headers["content-type"]);
    }
    if (cors.handle(req, res)) {
      record.route = "preflight";
      record.protocol = "cors";
      record.code = res.statusCode < 400 ? "OK" : Code[Code.PermissionDenied];
      return;
    }
    if (!fastPath?.handle(req, res)) rpc(req, res);
  });

  const admin = createAdminServer(metrics, health);
  await health.start();
  const port = await server.listen(runtime.port, runtime.host);
  admin.listen(runtime.adminPort, runtime.host);
  await once(admin, "listening");
  const adminPort = (admin.address() as { port: number }).port;
  logger.info("serving", {
    port,
    admin_port: adminPort,
    upstreams: Object.fromEntries(upstreams.map((u) => [u.name, u.url])),
    rest_routes: rest.routes.length,
    web_root: files.folder ?? null,
    cors_allowed_origins: config.corsAllowedOrigins,
    rate_limit: config.rateLimit ?? "off",
    serving: health.isServing,
  });

  let stopping: Promise<void> | undefined;
  const shutdown = () =>
    (stopping ??= (async () => {
      logger.info("shutting down", { in_flight: server.requestsInFlight });
      health.beginShutdown();
      // Open subscriptions would hold the drain to its timeout: end them
      // now with a retryable code so clients reconnect to another instance.
      streamsStop.abort(new ConnectError("the gateway is shutting down, reconnect", Code.Unavailable));
      if (await server.drain(runtime.shutdownTimeoutMs)) logger.warn("shutdown timeout: aborting in-flight requests");
      admin.close();
      admin.closeAllConnections();
      for (const upstream of upstreams) upstream.close();
      logger.info("stopped");
    })());

  return { name: "gateway", port, adminPort, health, metrics, shutdown, unaryFastPath: fastPath };
}
