// The mesh as separate processes, with the faults the suite injects: every
// service (events, bookings, notifications) and the gateway in its own
// `node --import tsx` process, FerretDB and RabbitMQ each behind a TCP proxy
// the suite controls.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, readFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { HealthCheckResponse_ServingStatus, Health } from "../../gen/health/v1/health_pb.js";
import { startFerretDB, type FerretDB } from "../../scripts/ferretdb/server.js";
import { startTcpProxy, type TcpProxy } from "../../services/messaging/tcp-proxy.js";
import { TEST_AUTH_ENV } from "../../services/runtime/auth/testing.js";
import { sleep } from "../support/eventually.js";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);

export type ServiceName = "events" | "bookings" | "notifications" | "gateway";
export const SERVICE_NAMES: ServiceName[] = ["events", "bookings", "notifications", "gateway"];

const ENTRY: Record<ServiceName, string> = {
  events: "services/events/main.ts",
  bookings: "services/bookings/main.ts",
  notifications: "services/notifications/main.ts",
  gateway: "gateway/main.ts",
};

/** A port nothing listens on right now (bound, then released; fine for tests). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

// Processes still running, killed if the suite exits without stopping them (Ctrl-C, a crash).
const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/** One service process; restartable on the same ports so that its callers find it again. */
export class ServiceProcess {
  private child?: ChildProcess;
  private exited?: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly health?: ReturnType<typeof createClient<typeof Health>>;

  constructor(
    readonly name: ServiceName,
    readonly port: number,
    readonly adminPort: number,
    private readonly env: Record<string, string>,
    private readonly logFile: string,
  ) {
    if (name !== "gateway") this.health = createClient(Health, createGrpcTransport({ baseUrl: this.url }));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    if (this.running) throw new Error(`${this.name} is already running`);
    const log = createWriteStream(this.logFile, { flags: "a" });
    const child = spawn(process.execPath, ["--import", "tsx", ENTRY[this.name]], {
      cwd: ROOT,
      env: { ...process.env, ...this.env, PORT: String(this.port), ADMIN_PORT: String(this.adminPort) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    live.add(child);
    this.exited = new Promise((resolve) =>
      child.once("exit", (code, signal) => {
        live.delete(child);
        log.end();
        resolve({ code, signal });
      }),
    );
    this.child = child;
  }

  signal(signal: NodeJS.Signals): void {
    if (!this.running) throw new Error(`${this.name} is not running`);
    this.child!.kill(signal);
  }

  /** How the process ended (waits for it). */
  async waitExit(timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.exited) throw new Error(`${this.name} was never started`);
    const timeout = sleep(timeoutMs).then(() => {
      throw new Error(`${this.name} did not exit within ${timeoutMs} ms`);
    });
    return Promise.race([this.exited, timeout]);
  }

  /** SERVING by gRPC health (services) or /readyz 200 (gateway); false on any failure. */
  async serving(): Promise<boolean> {
    if (!this.running) return false;
    try {
      if (!this.health) {
        const res = await fetch(`http://127.0.0.1:${this.adminPort}/readyz`, { signal: AbortSignal.timeout(1_000) });
        return res.status === 200;
      }
      const res = await this.health.check({ service: "" }, { timeoutMs: 1_000 });
      return res.status === HealthCheckResponse_ServingStatus.SERVING;
    } catch {
      return false;
    }
  }

  /** Resident set size in bytes (Linux /proc). */
  rss(): number {
    if (!this.pid || !this.running) return NaN;
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${this.pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : NaN;
  }

  /** Ends the process for good: SIGTERM, then SIGKILL if it lingers. */
  async stop(): Promise<void> {
    if (!this.running) return;
    if (this.child!.signalCode === null) this.child!.kill("SIGCONT"); // a stalled process cannot exit
    this.child!.kill("SIGTERM");
    await this.waitExit(10_000).catch(async () => {
      this.child!.kill("SIGKILL");
      await this.waitExit(5_000);
    });
  }
}

export interface MeshOptions {
  /** RabbitMQ as the services would reach it without the proxy. */
  amqpUrl: string;
  /** Where per-process logs go. */
  logDir: string;
  /** Extra environment for every process (e.g. BOOKING_STALE_AFTER_MS). */
  env?: Record<string, string>;
}

/**
 * FerretDB (a throwaway one, behind `db`), the broker proxy (`broker`) and
 * the three processes. Databases are named per mesh, so meshes never share
 * data; the suite's own checks read FerretDB directly (`mongodbUrl`).
 */
export class Mesh {
  private constructor(
    readonly ferret: FerretDB,
    readonly db: TcpProxy,
    readonly broker: TcpProxy,
    readonly amqpUrl: string,
    readonly processes: Record<ServiceName, ServiceProcess>,
    readonly databases: { events: string; bookings: string },
  ) {}

  static async start(opts: MeshOptions): Promise<Mesh> {
    mkdirSync(opts.logDir, { recursive: true });
    const ferret = await startFerretDB();
    const db = await startTcpProxy("127.0.0.1", ferret.port);
    const amqp = new URL(opts.amqpUrl);
    const broker = await startTcpProxy(amqp.hostname, Number(amqp.port || 5672));
    const viaProxy = new URL(opts.amqpUrl);
    viaProxy.hostname = "127.0.0.1";
    viaProxy.port = String(broker.port);
    const suffix = Math.random().toString(16).slice(2, 10);
    const databases = { events: `faults_events_${suffix}`, bookings: `faults_bookings_${suffix}` };
    const ports = async () => [await freePort(), await freePort()] as const;
    const [eventsPort, eventsAdmin] = await ports();
    const [bookingsPort, bookingsAdmin] = await ports();
    const [notificationsPort, notificationsAdmin] = await ports();
    const [gatewayPort, gatewayAdmin] = await ports();
    const common = {
      HOST: "127.0.0.1",
      LOG_LEVEL: "warn",
      ...TEST_AUTH_ENV, // the load signs its tokens with the test secret (client.ts)
      MONGODB_URL: `mongodb://127.0.0.1:${db.port}/`,
      AMQP_URL: viaProxy.toString(),
      EVENTS_DATABASE: databases.events,
      BOOKINGS_DATABASE: databases.bookings,
      EVENTS_URL: `http://127.0.0.1:${eventsPort}`,
      BOOKINGS_URL: `http://127.0.0.1:${bookingsPort}`,
      NOTIFICATIONS_URL: `http://127.0.0.1:${notificationsPort}`,
      ...opts.env,
    };
    const log = (name: string) => join(opts.logDir, `${name}.log`);
    const processes = {
      events: new ServiceProcess("events", eventsPort, eventsAdmin, common, log("events")),
      bookings: new ServiceProcess("bookings", bookingsPort, bookingsAdmin, common, log("bookings")),
      notifications: new ServiceProcess("notifications", notificationsPort, notificationsAdmin, common, log("notifications")),
      gateway: new ServiceProcess("gateway", gatewayPort, gatewayAdmin, common, log("gateway")),
    };
    const mesh = new Mesh(ferret, db, broker, opts.amqpUrl, processes, databases);
    for (const name of SERVICE_NAMES) processes[name].start();
    await mesh.waitServing(60_000);
    return mesh;
  }

  get mongodbUrl(): string {
    return this.ferret.url;
  }

  get edgeUrl(): string {
    return this.processes.gateway.url;
  }

  async allServing(): Promise<boolean> {
    const states = await Promise.all(SERVICE_NAMES.map((n) => this.processes[n].serving()));
    return states.every(Boolean);
  }

  /** Which processes are not SERVING right now (for error messages). */
  async notServing(): Promise<ServiceName[]> {
    const states = await Promise.all(SERVICE_NAMES.map(async (n) => [n, await this.processes[n].serving()] as const));
    return states.filter(([, ok]) => !ok).map(([n]) => n);
  }

  async waitServing(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await this.allServing())) {
      if (Date.now() > deadline) throw new Error(`not SERVING after ${timeoutMs} ms: ${(await this.notServing()).join(", ")}`);
      await sleep(100);
    }
  }

  async stop(): Promise<void> {
    // Gateway first, so that nothing calls a service that is going away.
    for (const name of ["gateway", "notifications", "bookings", "events"] as const) await this.processes[name].stop().catch(() => {});
    await this.broker.close();
    await this.db.close();
    await this.ferret.stop();
  }
}

/** Makes Ctrl-C and SIGTERM run the exit hooks above (and FerretDB's), so nothing is left running. */
export function exitOnInterrupt(): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130));
}

/**
 * A vhost of the suite's own next to `amqpUrl`'s, so that other tests
 * publishing to "myevents" on the same broker never reach the mesh's queues
 * (the processed-message counts below would be off). Falls back to
 * `amqpUrl` itself when rabbitmqctl is not available.
 */
export async function isolatedAmqpUrl(amqpUrl: string): Promise<{ url: string; isolated: boolean }> {
  const url = new URL(amqpUrl);
  const base = decodeURIComponent(url.pathname.slice(1)) || "myevents";
  const vhost = `${base}-faults-${Math.random().toString(16).slice(2, 8)}`;
  try {
    await run("rabbitmqctl", ["add_vhost", vhost]);
    await run("rabbitmqctl", ["set_permissions", "-p", vhost, url.username || "guest", ".*", ".*", ".*"]);
  } catch {
    return { url: amqpUrl, isolated: false };
  }
  url.pathname = `/${encodeURIComponent(vhost)}`;
  return { url: url.toString(), isolated: true };
}

export async function deleteVhost(amqpUrl: string): Promise<void> {
  const vhost = decodeURIComponent(new URL(amqpUrl).pathname.slice(1));
  await run("rabbitmqctl", ["delete_vhost", vhost]).catch(() => {});
}
