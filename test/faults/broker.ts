// A RabbitMQ node of the suite's own, so that restarting "the broker" cuts
// only the mesh under test and never the machine's shared RabbitMQ (other
// tests, other developers). The node runs from Debian's rabbitmq-server
// scripts with every path, port and name pointing at a temporary folder;
// it is stopped and the folder removed when the suite ends.
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./mesh.js";
import { sleep } from "../support/eventually.js";

const run = promisify(execFile);
const SBIN = "/usr/lib/rabbitmq/bin";

/** Whether this machine has the RabbitMQ server scripts a private node needs. */
export function privateBrokerAvailable(): boolean {
  return existsSync(join(SBIN, "rabbitmq-server")) && existsSync(join(SBIN, "rabbitmqctl"));
}

export class PrivateBroker {
  private stopped = false;

  private constructor(
    private readonly dir: string,
    private readonly env: NodeJS.ProcessEnv,
    readonly port: number,
  ) {}

  /** guest/guest on 127.0.0.1, default vhost. */
  get url(): string {
    return `amqp://guest:guest@127.0.0.1:${this.port}/`;
  }

  static async start(): Promise<PrivateBroker> {
    if (!privateBrokerAvailable()) throw new Error(`no RabbitMQ server scripts in ${SBIN}: a private broker node cannot be started`);
    const dir = mkdtempSync(join(tmpdir(), "myevents-faults-rabbitmq-"));
    const [port, distPort] = [await freePort(), await freePort()];
    // Only this file's settings: the machine's /etc/rabbitmq (its listener on 5672,
    // its plugins and their ports, its node name) must not apply to this node.
    // Loopback only. (`listeners.tcp.default = 127.0.0.1:PORT` failed here with eaddrinuse on
    // RabbitMQ 3.10; a numbered key works.)
    writeFileSync(join(dir, "rabbitmq.conf"), [`listeners.tcp.1 = 127.0.0.1:${port}`, "loopback_users = none", ""].join("\n"));
    writeFileSync(join(dir, "enabled_plugins"), "[].\n");
    writeFileSync(join(dir, "rabbitmq-env.conf"), "");
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HOME: dir, // the node's and rabbitmqctl's shared Erlang cookie is created here
      RABBITMQ_NODENAME: `myevents-faults-${process.pid}@localhost`,
      RABBITMQ_DIST_PORT: String(distPort),
      // Erlang distribution (rabbitmqctl talks to the node through it) on loopback too.
      ERL_FLAGS: "-kernel inet_dist_use_interface {127,0,0,1}",
      RABBITMQ_CONF_ENV_FILE: join(dir, "rabbitmq-env.conf"),
      RABBITMQ_CONFIG_FILE: join(dir, "rabbitmq.conf"),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, "enabled_plugins"),
      RABBITMQ_MNESIA_BASE: join(dir, "mnesia"),
      RABBITMQ_LOG_BASE: join(dir, "log"),
      RABBITMQ_PID_FILE: join(dir, "pid"),
    };
    const broker = new PrivateBroker(dir, env, port);
    liveBrokers.add(broker);
    const server = spawn(join(SBIN, "rabbitmq-server"), ["-detached"], { env, cwd: dir, stdio: "ignore" });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.once("exit", () => resolve());
    });
    try {
      await broker.ctl(["wait", join(dir, "pid"), "--timeout", "120"], 150_000);
    } catch (err) {
      await broker.stop();
      throw new Error(`the private RabbitMQ node did not start (logs in ${join(dir, "log")} were removed): ${(err as Error).message}`);
    }
    return broker;
  }

  /** rabbitmqctl against this node. */
  async ctl(args: string[], timeoutMs = 60_000): Promise<string> {
    const { stdout } = await run(join(SBIN, "rabbitmqctl"), ["-q", ...args], { env: this.env, cwd: this.dir, timeout: timeoutMs });
    return stdout;
  }

  /** A real broker restart: the RabbitMQ application stops (every client is cut), `downMs` later it starts again. */
  async restart(downMs: number): Promise<void> {
    await this.ctl(["stop_app"], 60_000);
    await sleep(downMs);
    await this.ctl(["start_app"], 120_000);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    liveBrokers.delete(this);
    await this.ctl(["stop"], 60_000).catch(() => killNode(this.dir));
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Synchronous last resort for process exit: the node's OS process by its pid file. */
  killNow(): void {
    killNode(this.dir);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function killNode(dir: string): void {
  try {
    const pid = Number(readFileSync(join(dir, "pid"), "utf8").trim());
    if (pid > 0) process.kill(pid, "SIGKILL");
  } catch {
    // no pid file, or already gone
  }
}

const liveBrokers = new Set<PrivateBroker>();
process.on("exit", () => {
  for (const broker of liveBrokers) broker.killNow();
});
