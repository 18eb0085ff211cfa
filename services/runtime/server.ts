import { once } from "node:events";
import { createRegistry, type DescMethod, type DescService } from "@bufbuild/protobuf";
import type { ConnectRouter, Interceptor, ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Registry, collectDefaultMetrics } from "prom-client";
import { Health } from "../../gen/health/v1/health_pb.js";
import { createAdminServer } from "./admin.js";
import { GrpcUnaryFastPath } from "./grpc-unary.js";
import { rejectUndecodableRequests, undecodableInterceptor } from "./decoding.js";
import { DrainingServer } from "./draining.js";
import type { RuntimeConfig } from "./config.js";
import { HealthMonitor, healthService, type Dependency } from "./health.js";
import { tuneServiceProcess } from "./process-tuning.js";
import { authInterceptor } from "./auth/interceptor.js";
import type { Access } from "./auth/policy.js";
import { createTokenVerifier } from "./auth/tokens.js";
import { observabilityInterceptor } from "./interceptors/observability.js";
import { requestValidation } from "./interceptors/validation.js";
import { flushStdout, type Logger } from "./logger.js";
import { reflectionServices } from "./reflection.js";

/** A service descriptor with its handlers, ready to be routed. */
export interface ServiceRegistration {
  desc: DescService;
  route(router: ConnectRouter): void;
}

/** Pairs a generated service with plain handler functions over its types. */
export function serve<S extends DescService>(desc: S, impl: Partial<ServiceImpl<S>>): ServiceRegistration {
  return { desc, route: (router) => router.service(desc, impl) };
}

export interface StartOptions {
  /** Short name for logs and metrics, e.g. "events". */
  name: string;
  config: RuntimeConfig;
  services: ServiceRegistration[];
  /** Probed for health and readiness (e.g. the database). */
  dependencies?: Dependency[];
  logger: Logger;
  /**
   * Who may call each method; the mesh's policy (auth/policy.ts) when absent.
   * For services outside the contracts, e.g. the conformance suite's test service.
   */
  access?: (method: DescMethod) => Access;
  /** Extra interceptors, run inside the shared ones (errors, auth). */
  interceptors?: Interceptor[];
  /** Runs after the servers drained, to close clients (database, broker). */
  close?: () => Promise<void>;
  /** Registry for the service's own metrics too (outbox, messaging); one is made if absent. */
  metrics?: Registry;
}

export interface RunningService {
  name: string;
  /** The bound API port (useful when config.port is 0). */
  port: number;
  adminPort: number;
  health: HealthMonitor;
  metrics: Registry;
  /** The unary gRPC fast path, where there is one (tests read its call count). */
  fastPath?: GrpcUnaryFastPath;
  /** Graceful stop: NOT_SERVING, refuse new calls, finish in-flight ones, close. */
  shutdown(): Promise<void>;
}

/**
 * Starts one service process's servers: the API port speaking gRPC,
 * gRPC-Web and Connect over HTTP/2 cleartext and HTTP/1.1 (plus health and
 * reflection), and the admin port. Cross-cutting behaviour is applied here
 * through interceptors so that handlers stay plain functions.
 */
export async function startService(opts: StartOptions): Promise<RunningService> {
  const { config, logger } = opts;
  tuneServiceProcess();
  const metrics = opts.metrics ?? new Registry();
  metrics.setDefaultLabels({ service: opts.name });
  collectDefaultMetrics({ register: metrics });

  const served = opts.services.map((s) => s.desc);
  const health = new HealthMonitor(
    served.map((s) => s.typeName),
    opts.dependencies ?? [],
    config.healthCheckIntervalMs,
    logger,
  );
  const registrations = [
    ...opts.services,
    serve(Health, healthService(health, served.map((s) => s.typeName))),
    ...reflectionServices([...served, Health]),
  ];

  const validation = requestValidation(served);
  // The first interceptor is the outermost: logs and metrics see the code
  // that errors are settled on (errorsInterceptor's mapping, done by the
  // observing interceptor: one promise less per call).
  const interceptors = [
    observabilityInterceptor(logger, metrics, [], { settleErrors: true }),
    authInterceptor(createTokenVerifier(config.auth, logger), opts.access),
    undecodableInterceptor(),
    validation.interceptor,
    ...(opts.interceptors ?? []),
  ];
  // Unary gRPC calls skip connect-node (see grpc-unary.ts) but run the same interceptors and handlers.
  const fastPath = new GrpcUnaryFastPath(interceptors, { maxRequestBytes: config.maxRequestBytes, maxDeadlineMs: config.maxDeadlineMs });
  const handler = connectNodeAdapter({
    routes: (router) => {
      registrations.forEach((r) => r.route(fastPath.recording(router)));
      rejectUndecodableRequests(router, config.maxRequestBytes);
    },
    interceptors,
    readMaxBytes: config.maxRequestBytes,
    maxTimeoutMs: config.maxDeadlineMs,
    // JSON names the type in a google.protobuf.Any field: those of the served contracts must be known.
    jsonOptions: { registry: createRegistry(...served.map((s) => s.file)) },
  });

  const server = new DrainingServer(handler, undefined, (stream, headers) => fastPath.handle(stream, headers));

  const admin = createAdminServer(metrics, health);
  await health.start();
  admin.listen(config.adminPort, config.host);
  const [port] = await Promise.all([server.listen(config.port, config.host), once(admin, "listening")]);
  const adminPort = (admin.address() as { port: number }).port;
  logger.info("serving", { port, admin_port: adminPort, services: served.map((s) => s.typeName), serving: health.isServing });
  // Listening first: compiling the contracts' rules would hold back SERVING.
  void validation.warmUp().then((broken) => {
    for (const [type, error] of broken) logger.error("validation rules cannot be evaluated", { type, error });
  });

  let stopping: Promise<void> | undefined;
  const shutdown = () =>
    (stopping ??= (async () => {
      logger.info("shutting down", { in_flight: server.requestsInFlight });
      health.beginShutdown();
      if (await server.drain(config.shutdownTimeoutMs)) logger.warn("shutdown timeout: in-flight calls were cut short");
      admin.close();
      admin.closeAllConnections();
      await opts.close?.();
      logger.info("stopped");
    })());

  return { name: opts.name, port, adminPort, health, metrics, fastPath, shutdown };
}

/**
 * Process entry helper: SIGTERM/SIGINT stop every given service gracefully
 * (then run `afterStop`, e.g. flushing spans) and exit 0; a second signal
 * exits at once.
 */
export function exitOnSignals(services: RunningService[], logger: Logger, afterStop?: () => Promise<void>): void {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) process.exit(1);
    signalled = true;
    logger.info("signal received", { signal });
    Promise.all(services.map((s) => s.shutdown()))
      .then(() => afterStop?.())
      .then(
        () => 0,
        (err) => {
          logger.error("shutdown failed", { error: err });
          return 1;
        },
      )
      // The last lines say how the process stopped: let stdout take them first.
      .then(async (code) => {
        await flushStdout();
        process.exit(code);
      });
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}
