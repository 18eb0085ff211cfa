// Benchmark harness: `node --import tsx bench/run.ts [--quick]`.
// Every measured server and every load client is its own child process.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import { ROOT, freePort, rssOf, type ServerStats } from "./lib.js";
import type { LoadResult } from "./load.js";

const quick = process.argv.includes("--quick");
const A = quick ? { rounds: 2, warmup: 1_000, calls: 3_000, concurrency: 64 } : { rounds: 5, warmup: 5_000, calls: 20_000, concurrency: 64 };
const COLD_RUNS = quick ? 1 : 3;

// One HS256 secret per run: the project's server verifies, the load client signs its seeding calls.
const BENCH_JWT_SECRET = randomBytes(32).toString("base64url");

/** Children get no MongoDB/RabbitMQ: embedded defaults. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, JWT_SECRET: BENCH_JWT_SECRET, ...extra };
  for (const k of ["MONGODB_URL", "AMQP_URL", "EVENTS_URL", "NODE_OPTIONS"]) delete env[k];
  return env;
}

function start(script: string, env: Record<string, string>, nodeArgs: string[] = []): ChildProcess {
  // stdout (the JSON logs) goes to /dev/null; stderr stays visible.
  return spawn(process.execPath, [...nodeArgs, "--import", "tsx", script], { cwd: ROOT, env: childEnv(env), stdio: ["ignore", "ignore", "inherit", "ipc"] });
}

function message<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: { type?: string }) => {
      if (m?.type === type) {
        cleanup();
        resolve(m as T);
      }
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`child exited (${code}) while waiting for ${type}`));
    };
    const cleanup = () => {
      child.off("message", onMsg);
      child.off("exit", onExit);
    };
    child.on("message", onMsg);
    child.once("exit", onExit);
  });
}

async function stop(child: ChildProcess, how: "ipc" | NodeJS.Signals = "ipc"): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  if (how === "ipc") child.send({ type: "exit" });
  else child.kill(how);
  await Promise.race([exited, sleep(5_000).then(() => child.kill("SIGKILL"))]);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

// ---------------------------------------------------------------- scenario (a)

type Side = "project" | "bare";
interface RunA extends LoadResult {
  side: Side;
  round: number;
  serverCpuUsPerCall: number;
}

async function scenarioA() {
  const servers = {} as Record<Side, { child: ChildProcess; port: number }>;
  for (const [side, script] of [["project", "bench/servers/events.ts"], ["bare", "bench/servers/bare.ts"]] as const) {
    const child = start(script, { PORT: String(await freePort()), ADMIN_PORT: String(await freePort()) });
    const { port } = await message<{ port: number }>(child, "ready");
    servers[side] = { child, port };
  }
  await sleep(1_000);
  const rssIdle = { project: rssOf(servers.project.child.pid!), bare: rssOf(servers.bare.child.pid!) };

  const stats = async (child: ChildProcess) => {
    const got = message<ServerStats>(child, "stats");
    child.send({ type: "stats" });
    const s = await got;
    return s.cpuUserUs + s.cpuSystemUs;
  };

  const runs: RunA[] = [];
  for (let round = 0; round < A.rounds; round++) {
    const order: Side[] = round % 2 === 0 ? ["project", "bare"] : ["bare", "project"];
    for (const side of order) {
      const server = servers[side];
      const client = start("bench/load.ts", { TARGET_PORT: String(server.port), SEED: side === "project" ? "1" : "0" });
      await message(client, "ready");
      client.send({ type: "run", calls: A.warmup, concurrency: A.concurrency });
      await message(client, "done");
      const cpu0 = await stats(server.child);
      client.send({ type: "run", calls: A.calls, concurrency: A.concurrency });
      const result = await message<LoadResult>(client, "done");
      const cpu1 = await stats(server.child);
      await stop(client);
      const { type: _t, ...r } = result as LoadResult & { type?: string };
      runs.push({ side, round, ...r, serverCpuUsPerCall: (cpu1 - cpu0) / A.calls });
      console.error(`(a) round ${round} ${side.padEnd(7)} ${r.callsPerSec.toFixed(0)} calls/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms  cpu ${((cpu1 - cpu0) / A.calls).toFixed(1)} µs/call  errors ${r.errors}`);
    }
  }
  const rssAfterLoad = { project: rssOf(servers.project.child.pid!), bare: rssOf(servers.bare.child.pid!) };
  await stop(servers.project.child);
  await stop(servers.bare.child);

  const summary = (side: Side) => {
    const rs = runs.filter((r) => r.side === side);
    return {
      callsPerSec: median(rs.map((r) => r.callsPerSec)),
      p50Ms: median(rs.map((r) => r.p50Ms)),
      p90Ms: median(rs.map((r) => r.p90Ms)),
      p99Ms: median(rs.map((r) => r.p99Ms)),
      serverCpuUsPerCall: median(rs.map((r) => r.serverCpuUsPerCall)),
      errors: rs.reduce((n, r) => n + r.errors, 0),
    };
  };
  return { params: A, runs, summary: { project: summary("project"), bare: summary("bare") }, rssIdle, rssAfterLoad };
}

// ---------------------------------------------------------------- scenario (e)

const Health = grpc.makeGenericClientConstructor(
  {
    Check: {
      path: "/grpc.health.v1.Health/Check",
      requestStream: false,
      responseStream: false,
      requestSerialize: () => Buffer.alloc(0), // HealthCheckRequest{service: ""}
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
    },
  },
  "Health",
);

/** Polls Health/Check every 10 ms until SERVING; returns when it saw it. */
async function untilServing(port: number, deadlineMs: number): Promise<void> {
  const client = new Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
    "grpc.initial_reconnect_backoff_ms": 10,
    "grpc.max_reconnect_backoff_ms": 10,
    "grpc.min_reconnect_backoff_ms": 10,
  } as grpc.ChannelOptions) as unknown as grpc.Client & { Check: (req: null, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Buffer) => void) => void };
  const end = performance.now() + deadlineMs;
  try {
    while (performance.now() < end) {
      const serving = await new Promise<boolean>((resolve) =>
        client.Check(null, { deadline: Date.now() + 500 }, (err, res) => resolve(!err && res !== undefined && res.equals(Buffer.from([0x08, 0x01])))),
      );
      if (serving) return;
      await sleep(10);
    }
    throw new Error(`not SERVING on :${port} within ${deadlineMs} ms`);
  } finally {
    client.close();
  }
}

type Svc = "events" | "bookings";
interface RunE {
  service: Svc;
  round: number;
  msToServing: number;
  rssAtServing: number;
  rssIdle1s: number;
}

async function scenarioE() {
  const runs: RunE[] = [];
  for (let round = 0; round < COLD_RUNS; round++) {
    const order: Svc[] = round % 2 === 0 ? ["events", "bookings"] : ["bookings", "events"];
    for (const service of order) {
      const port = await freePort();
      const adminPort = await freePort();
      const t0 = performance.now();
      const child = start(`services/${service}/main.ts`, { PORT: String(port), ADMIN_PORT: String(adminPort), HOST: "127.0.0.1", LOG_LEVEL: "info" });
      await untilServing(port, 30_000);
      const msToServing = performance.now() - t0;
      const rssAtServing = rssOf(child.pid!);
      await sleep(1_000);
      const rssIdle1s = rssOf(child.pid!);
      await stop(child, "SIGTERM");
      runs.push({ service, round, msToServing, rssAtServing, rssIdle1s });
      console.error(`(e) round ${round} ${service.padEnd(8)} ${msToServing.toFixed(0)} ms to SERVING, RSS ${(rssIdle1s / 2 ** 20).toFixed(1)} MiB idle`);
    }
  }
  const summary = (service: Svc) => {
    const rs = runs.filter((r) => r.service === service);
    return { msToServing: median(rs.map((r) => r.msToServing)), rssIdle1s: median(rs.map((r) => r.rssIdle1s)) };
  };
  return { runs, summary: { events: summary("events"), bookings: summary("bookings") } };
}

// ---------------------------------------------------------------- report

const machine = { cores: cpus().length, cpuModel: cpus()[0]?.model ?? "unknown", node: process.version, date: new Date().toISOString(), quick };
console.error(`machine: ${machine.cores} cores, ${machine.cpuModel}, Node ${machine.node}${quick ? " (--quick)" : ""}`);
const a = await scenarioA();
const e = await scenarioE();

mkdirSync(`${ROOT}bench/results`, { recursive: true });
const stamp = machine.date.replace(/[:.]/g, "-");
writeFileSync(`${ROOT}bench/results/${stamp}.json`, JSON.stringify({ machine, a, e }, null, 2) + "\n");

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
const p = a.summary.project;
const b = a.summary.bare;
const md = `# Benchmark results

${machine.date} · ${machine.cores} cores · ${machine.cpuModel} · Node ${machine.node}${quick ? " · **--quick**" : ""}

## (a) Unary GetEvent over gRPC

${A.calls} calls at concurrency ${A.concurrency} over one HTTP/2 connection (grpc-js client in its own process), after ${A.warmup} warm-up calls;
${A.rounds} rounds alternating the sides; medians over rounds. Server CPU = server process \`cpuUsage()\` delta / calls.

| | calls/s | p50 ms | p90 ms | p99 ms | server CPU µs/call | errors | RSS idle | RSS after load |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
| project (EventService, runtime, LOG_LEVEL=info) | ${p.callsPerSec.toFixed(0)} | ${p.p50Ms.toFixed(2)} | ${p.p90Ms.toFixed(2)} | ${p.p99Ms.toFixed(2)} | ${p.serverCpuUsPerCall.toFixed(1)} | ${p.errors} | ${mib(a.rssIdle.project)} | ${mib(a.rssAfterLoad.project)} |
| bare @grpc/grpc-js | ${b.callsPerSec.toFixed(0)} | ${b.p50Ms.toFixed(2)} | ${b.p90Ms.toFixed(2)} | ${b.p99Ms.toFixed(2)} | ${b.serverCpuUsPerCall.toFixed(1)} | ${b.errors} | ${mib(a.rssIdle.bare)} | ${mib(a.rssAfterLoad.bare)} |
| **ratio project/bare** | ${(p.callsPerSec / b.callsPerSec).toFixed(2)} | ${(p.p50Ms / b.p50Ms).toFixed(2)} | ${(p.p90Ms / b.p90Ms).toFixed(2)} | ${(p.p99Ms / b.p99Ms).toFixed(2)} | ${(p.serverCpuUsPerCall / b.serverCpuUsPerCall).toFixed(2)} | | | |

Per round (calls/s): ${a.runs.map((r) => `${r.side} ${r.callsPerSec.toFixed(0)}`).join(", ")}

## (e) Cold start to SERVING

\`node --import tsx services/<svc>/main.ts\`, embedded defaults (no MONGODB_URL/AMQP_URL), from spawn to the first SERVING
answer of \`grpc.health.v1.Health/Check\` (polled every 10 ms); ${COLD_RUNS} runs each, alternating; medians.

| service | ms to SERVING | RSS 1 s after SERVING | runs (ms) |
|---|---:|---:|---|
| events | ${e.summary.events.msToServing.toFixed(0)} | ${mib(e.summary.events.rssIdle1s)} | ${e.runs.filter((r) => r.service === "events").map((r) => r.msToServing.toFixed(0)).join(", ")} |
| bookings | ${e.summary.bookings.msToServing.toFixed(0)} | ${mib(e.summary.bookings.rssIdle1s)} | ${e.runs.filter((r) => r.service === "bookings").map((r) => r.msToServing.toFixed(0)).join(", ")} |

Raw data: \`bench/results/${stamp}.json\`.
`;
writeFileSync(`${ROOT}bench/results/latest.md`, md);
process.stdout.write(md);
