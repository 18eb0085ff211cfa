import { EventEmitter, on } from "node:events";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../../gen/health/v1/health_pb.js";
import type { Logger } from "./logger.js";

export { ServingStatus };

/**
 * The health name liveness probes ask for: SERVING whenever the process
 * answers at all, whatever its dependencies and even while it drains.
 * Restarting a process does not bring its database back, so liveness must
 * not follow readiness.
 */
export const LIVENESS_SERVICE = "liveness";

/** Something the service needs to do its work, e.g. its database. */
export interface Dependency {
  name: string;
  /** Resolves when the dependency is usable; rejects (or hangs) otherwise. */
  check(): Promise<void>;
}

/**
 * The process's serving state: SERVING while every dependency answers its
 * check and the process is not shutting down. Dependencies are probed on
 * an interval so that Check stays cheap and Watch sees changes.
 */
export class HealthMonitor {
  private serving = false;
  private shuttingDown = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly changes = new EventEmitter();
  private readonly failing = new Map<string, string>();

  constructor(
    /** Fully-qualified names of the served services, e.g. "myevents.v1.EventService". */
    private readonly services: readonly string[],
    private readonly dependencies: readonly Dependency[],
    private readonly intervalMs: number,
    private readonly logger: Logger,
  ) {
    this.changes.setMaxListeners(0);
  }

  /** Probes once (so the first answer is real), then on the interval. */
  async start(): Promise<void> {
    await this.probe();
    this.timer = setInterval(() => void this.probe(), this.intervalMs);
    this.timer.unref();
  }

  /** From now on NOT_SERVING, for good; open Watch streams see it and end. */
  beginShutdown(): void {
    this.shuttingDown = true;
    if (this.timer) clearInterval(this.timer);
    this.update();
    this.changes.emit("shutdown");
  }

  get isServing(): boolean {
    return this.serving && !this.shuttingDown;
  }

  /** Names of the dependencies whose last check failed, with the reason. */
  get failures(): Record<string, string> {
    return Object.fromEntries(this.failing);
  }

  /** Status of one service ("" = the whole server); undefined if not served here. */
  status(service: string): ServingStatus | undefined {
    if (service === LIVENESS_SERVICE) return ServingStatus.SERVING;
    if (service !== "" && !this.services.includes(service)) return undefined;
    return this.isServing ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
  }

  /** Current status, then every change, until shutdown or the signal aborts. */
  async *watch(service: string, signal: AbortSignal): AsyncGenerator<ServingStatus> {
    let last = this.status(service) ?? ServingStatus.SERVICE_UNKNOWN;
    yield last;
    if (this.shuttingDown) return;
    const stop = new AbortController();
    const abort = () => stop.abort();
    signal.addEventListener("abort", abort, { once: true });
    this.changes.once("shutdown", abort);
    try {
      for await (const _ of on(this.changes, "change", { signal: stop.signal })) {
        const now = this.status(service) ?? ServingStatus.SERVICE_UNKNOWN;
        if (now !== last) yield (last = now);
      }
    } catch (err) {
      if (!stop.signal.aborted) throw err;
    } finally {
      signal.removeEventListener("abort", abort);
      this.changes.off("shutdown", abort);
    }
  }

  private async probe(): Promise<void> {
    await Promise.all(
      this.dependencies.map(async (dep) => {
        try {
          await withTimeout(dep.check(), Math.min(this.intervalMs, 5_000), dep.name);
          if (this.failing.delete(dep.name)) this.logger.info("dependency recovered", { dependency: dep.name });
        } catch (err) {
          const reason = err instanceof Error ? err.message : String(err);
          if (!this.failing.has(dep.name)) this.logger.warn("dependency unavailable", { dependency: dep.name, reason });
          this.failing.set(dep.name, reason);
        }
      }),
    );
    this.update();
  }

  private update(): void {
    const serving = this.failing.size === 0;
    const changed = serving !== this.serving || this.shuttingDown;
    this.serving = serving;
    if (changed) this.changes.emit("change");
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, name: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** grpc.health.v1.Health over the monitor, as Kubernetes gRPC probes and grpc-health-probe expect. */
export function healthService(monitor: HealthMonitor, served: readonly string[]): ServiceImpl<typeof Health> {
  const response = (status: ServingStatus) => create(HealthCheckResponseSchema, { status });
  return {
    check(req) {
      const status = monitor.status(req.service);
      if (status === undefined) throw new ConnectError(`unknown service ${JSON.stringify(req.service)}`, Code.NotFound);
      return response(status);
    },
    async *watch(req, ctx) {
      for await (const status of monitor.watch(req.service, ctx.signal)) yield response(status);
    },
    list() {
      const statuses: Record<string, ReturnType<typeof response>> = { "": response(monitor.status("")!) };
      for (const name of served) statuses[name] = response(monitor.status(name)!);
      return { statuses };
    },
  };
}
