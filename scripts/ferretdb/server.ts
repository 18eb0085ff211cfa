// Starts a throwaway local FerretDB (MongoDB wire protocol over SQLite) for tests.
// Library: startFerretDB(). CLI: `npx tsx scripts/ferretdb/server.ts` prints MONGODB_URL=... and
// runs until SIGINT/SIGTERM.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export interface FerretDB {
  url: string;
  port: number;
  /** The FerretDB process (benchmarks read its CPU time from /proc). */
  pid: number | undefined;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Receives each line FerretDB writes to stdout/stderr (only errors, given --log-level=error). */
  log?: (line: string) => void;
}

const INSTALL_SCRIPT = fileURLToPath(new URL("./install.sh", import.meta.url));
const READY_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;

// Children still running, so they can be killed if this process exits without calling stop().
const live = new Map<ChildProcess, string>();
process.on("exit", () => {
  for (const [child, dir] of live) {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
});

let installing: Promise<string> | undefined;

/** Runs install.sh once per process; resolves to the ferretdb binary path. */
function installFerretDB(): Promise<string> {
  installing ??= new Promise<string>((done, fail) => {
    execFile("bash", [INSTALL_SCRIPT], (err, stdout, stderr) => {
      const path = stdout.trim().split("\n").pop();
      if (err || !path) {
        installing = undefined; // let a later call retry
        fail(new Error(`FerretDB install failed (${INSTALL_SCRIPT}):\n${stderr || err?.message}`));
      } else done(path);
    });
  });
  return installing;
}

/** Asks the OS for a free port. Racy in theory (someone may grab it before FerretDB binds), fine for tests. */
function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => done(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((done) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    sock.setTimeout(500);
    sock.once("connect", () => (sock.destroy(), done(true)));
    sock.once("timeout", () => (sock.destroy(), done(false)));
    sock.once("error", () => done(false));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startFerretDB(opts: StartOptions = {}): Promise<FerretDB> {
  const bin = await installFerretDB();
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), "ferretdb-"));
  const child = spawn(
    bin,
    [
      "--handler=sqlite",
      `--sqlite-url=file:${dir}/`, // a directory: one SQLite file per database
      `--listen-addr=127.0.0.1:${port}`,
      "--debug-addr=-", // "-" disables the HTTP debug listener (default :8088 would clash between instances)
      "--telemetry=disable",
      "--log-level=error",
      `--state-dir=${dir}`, // state.json; default "." would litter the cwd
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  live.set(child, dir);

  // Keep the last lines of output for error messages; forward them to opts.log.
  const tail: string[] = [];
  for (const stream of [child.stdout!, child.stderr!]) {
    let partial = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      const lines = (partial + chunk).split("\n");
      partial = lines.pop()!;
      for (const line of lines) {
        tail.push(line);
        if (tail.length > 30) tail.shift();
        opts.log?.(line);
      }
    });
  }
  // Don't let a forgotten instance keep the parent alive; the exit hook above kills it.
  child.unref();
  (child.stdout as net.Socket).unref();
  (child.stderr as net.Socket).unref();

  const exited = new Promise<void>((done) =>
    child.once("exit", () => {
      live.delete(child);
      done();
    }),
  );
  let spawnError: Error | undefined;
  child.once("error", (err) => (spawnError = err));

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const killer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
        await exited;
        clearTimeout(killer);
      }
      live.delete(child);
      await rm(dir, { recursive: true, force: true });
    })());

  // FerretDB opens its listener only after the SQLite backend is set up, so an accepted TCP
  // connection means hello/ping will be answered.
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const problem =
      spawnError?.message ??
      (child.exitCode !== null || child.signalCode !== null
        ? `exited with ${child.exitCode ?? child.signalCode}`
        : Date.now() > deadline
          ? `not accepting connections on port ${port} after ${READY_TIMEOUT_MS / 1000}s`
          : undefined);
    if (problem) {
      await stop();
      throw new Error(`FerretDB (${bin}) ${problem}. Output tail:\n${tail.join("\n") || "(none)"}`);
    }
    if (await canConnect(port)) break;
    await sleep(50);
  }

  return { url: `mongodb://127.0.0.1:${port}/`, port, pid: child.pid, stop };
}

// CLI: run directly (not imported).
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const db = await startFerretDB({ log: (line) => console.error(line) });
  console.log(`MONGODB_URL=${db.url}`);
  const keepAlive = setInterval(() => {}, 1 << 30); // the child is unref'd, so hold the process open
  const shutdown = async () => {
    clearInterval(keepAlive);
    await db.stop();
    process.exit(0);
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}
