// Benchmark harness: `npm run bench [-- --quick] [-- --ab-only]` (builds dist/ first).
// Every measured server and every load client is its own child process,
// running the compiled JavaScript in dist/ as the start scripts do.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import * as grpc from "@grpc/grpc-js";
import { ROOT, cpuOf, freePort, machineInfo, round2, rssOf } from "./lib.js";
import { buildGrpcGoClient, runGrpcGoClient } from "./grpc-go-client.js";
import type { LoadResult } from "./load.js";
import type { ServerMemory, ServerStats } from "./servers/ipc.js";
import { SERVICE_NODE_FLAGS } from "../services/runtime/node-flags.js";

const quick = process.argv.includes("--quick");
// `--ab-only`: scenarios (a) and (b) alone, printed, nothing written to bench/results (for trying a change).
const abOnly = process.argv.includes("--ab-only");
const A = quick ? { rounds: 2, warmup: 1_000, calls: 3_000, concurrency: 64 } : { rounds: 7, warmup: 5_000, calls: 20_000, concurrency: 64 };
if (process.env.AB_CALLS) A.calls = Number(process.env.AB_CALLS);
if (process.env.AB_ROUNDS) A.rounds = Number(process.env.AB_ROUNDS);
if (process.env.AB_CONC) A.concurrency = Number(process.env.AB_CONC);
const COLD_RUNS = quick ? 1 : 3;

// One HS256 secret per run: the project's server verifies, the load client signs its seeding calls.
const BENCH_JWT_SECRET = randomBytes(32).toString("base64url");

/** Children get no MongoDB/RabbitMQ: embedded defaults. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ["MONGODB_URL", "AMQP_URL", "EVENTS_URL", "NODE_OPTIONS"]) delete env[k];
  return { ...env, JWT_SECRET: BENCH_JWT_SECRET, ...extra };
}

/**
 * `script` is a path like "bench/servers/events.ts"; its build in dist/ runs, or the source under tsx with `viaTsx`.
 * `service`: a process of the project's, started with the node options the start scripts and images give every service.
 */
function start(script: string, env: Record<string, string>, opts: { viaTsx?: boolean; stdio?: "ipc" | "none"; service?: boolean } = {}): ChildProcess {
  const args = [...(opts.service ? SERVICE_NODE_FLAGS : []), ...(opts.viaTsx ? ["--import", "tsx", script] : [`dist/${script.replace(/\.ts$/, ".js")}`])];
  // stdout (the JSON logs) goes to /dev/null; stderr stays visible.
  const stdio = opts.stdio === "none" ? (["ignore", "ignore", "inherit"] as const) : (["ignore", "ignore", "inherit", "ipc"] as const);
  return spawn(process.execPath, args, { cwd: ROOT, env: childEnv(env), stdio: [...stdio] });
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

// ------------------------------------------------------ grpc.health.v1 probe

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

/** Polls an HTTP URL until it answers 200 (the gateway's /readyz). */
async function untilReady(url: string, deadlineMs: number, everyMs = 20): Promise<void> {
  const end = performance.now() + deadlineMs;
  while (performance.now() < end) {
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (ok) return;
    await sleep(everyMs);
  }
  throw new Error(`${url} not ready within ${deadlineMs} ms`);
}

// ------------------------------------------------ scenarios (a) and (b)

/**
 * The compared sides of (a) and (b), measured in the same rounds so that
 * their ratios come from the same machine state:
 *   project   the EventService (runtime, all interceptors), gRPC from grpc-js
 *   bare      a bare @grpc/grpc-js server, the same client
 *   project-go / bare-go   the same two servers loaded by grpc-go (bench/grpc-load): a grpc-js
 *             client spends about twice the server's CPU per call, so on two cores it sets the
 *             pace for both servers; grpc-go spends a fraction of it, so the server is the bottleneck
 *   gw-connect / gw-grpcweb   the same GetEvent through the gateway as a browser sends it
 */
type Side = "project" | "bare" | "project-go" | "bare-go" | "gw-connect" | "gw-grpcweb";
const BARE_EVENT_ID = "00000000-0000-4000-8000-000000000000"; // bench/servers/bare.ts answers this event for any id
// (b)'s load client: bench/http1-client.ts, or connect-node's client with CLIENT=connect-node (see bench/load.ts).
const browserClient = process.env.CLIENT === "connect-node" ? "connect-node's client over HTTP/1.1" : "a minimal HTTP/1.1 keep-alive client (bench/http1-client.ts)";

/** A server's V8 heap (used / committed bytes), asked over IPC (bench/servers/ipc.ts). */
async function heapOf(server: ChildProcess): Promise<{ used: number; total: number }> {
  server.send({ type: "memory" });
  const { memory } = await message<ServerMemory>(server, "memory");
  return { used: memory.heapUsed, total: memory.heapTotal };
}
const SIDES: Side[] = (process.env.AB_SIDES?.split(",") as Side[] | undefined) ?? ["project", "bare", "project-go", "bare-go", "gw-connect", "gw-grpcweb"];
const GO_PAIRS = quick ? 1 : 3;
/** The grpc-go sides' runs in one round: GO_PAIRS pairs, each pair's order flipped from the last. */
const goPairs = (round: number): Side[] =>
  Array.from({ length: GO_PAIRS }, (_, k) => ((round + k) % 2 ? ["bare-go", "project-go"] : ["project-go", "bare-go"]) as Side[]).flat();
interface Run extends LoadResult {
  side: Side;
  round: number;
  /** CPU of every server process on the call's path (gateway + events for the gateway sides), per call. */
  serverCpuUsPerCall: number;
  /** The gateway's share of it, for the gateway sides. */
  gatewayCpuUsPerCall?: number;
  /** CPU of the load client per call: a server's way of answering (frames, writes, headers) costs the client too. */
  clientCpuUsPerCall: number;
  /** Full GCs of the measured server (the EventService for the gateway sides) during the measured calls, and their pauses. */
  fullGcs: number;
  fullGcMs: number;
}

/** The servers' full GCs so far (bench/servers/ipc.ts), asked over IPC. */
async function fullGcsOf(server: ChildProcess): Promise<{ fullGcs: number; fullGcMs: number }> {
  server.send({ type: "stats" });
  const { fullGcs, fullGcMs } = await message<ServerStats>(server, "stats");
  return { fullGcs, fullGcMs };
}

/** An EventService ready to answer GetEvent: started, and the event every side reads created (its store starts empty). */
async function startSeededEvents(): Promise<{ child: ChildProcess; port: number; eventId: string }> {
  const child = start("bench/servers/events.ts", { PORT: String(await freePort()), ADMIN_PORT: String(await freePort()) }, { service: true });
  const port = (await message<{ port: number }>(child, "ready")).port;
  const seeder = start("bench/load.ts", { TARGET_PORT: String(port), SEED: "1" });
  const { eventId } = await message<{ eventId: string }>(seeder, "ready");
  await stop(seeder);
  return { child, port, eventId };
}

async function startBare(): Promise<{ child: ChildProcess; port: number }> {
  const child = start("bench/servers/bare.ts", { PORT: String(await freePort()) });
  return { child, port: (await message<{ port: number }>(child, "ready")).port };
}

async function scenarioAB() {
  const grpcGo = SIDES.some((side) => side.endsWith("-go")) ? buildGrpcGoClient() : "";
  // (a)'s two servers are started afresh every round: a process can settle into a state that
  // costs it a third to a half more CPU per call for its whole life (bench/README.md finding 16), so one
  // process per side for the whole run would make (a) a coin toss. The gateway's EventService
  // lives for the whole run.
  let events = await startSeededEvents();
  let bare = await startBare();
  const upstream = await startSeededEvents();
  const gwPort = await freePort();
  const gwAdmin = await freePort();
  // RATE_LIMIT_PER_SECOND=0: the per-client limit would cap the one load client; this measures the path.
  const gateway = start(
    "gateway/main.ts",
    { RATE_LIMIT_PER_SECOND: "0", HOST: "127.0.0.1", PORT: String(gwPort), ADMIN_PORT: String(gwAdmin), EVENTS_URL: `http://127.0.0.1:${upstream.port}`, BOOKINGS_URL: "none", NOTIFICATIONS_URL: "none", LOG_LEVEL: "info", WEB_ROOT: "/nonexistent" },
    { stdio: "none", service: true },
  );
  try {
    await untilReady(`http://127.0.0.1:${gwAdmin}/readyz`, 30_000);
  } catch (err) {
    for (const child of [events.child, bare.child, upstream.child, gateway]) child.kill();
    throw err;
  }
  await sleep(1_000);
  const rssIdle = { project: rssOf(events.child.pid!), bare: rssOf(bare.child.pid!), gateway: rssOf(gateway.pid!) };

  const path = (side: Side): { port: number; protocol: string; eventId: string; servers: ChildProcess[] } => {
    const gw = (protocol: string) => ({ port: gwPort, protocol, eventId: upstream.eventId, servers: [gateway, upstream.child] });
    return {
      project: { port: events.port, protocol: "grpc", eventId: events.eventId, servers: [events.child] },
      bare: { port: bare.port, protocol: "grpc", eventId: "", servers: [bare.child] },
      "project-go": { port: events.port, protocol: "grpc-go", eventId: events.eventId, servers: [events.child] },
      "bare-go": { port: bare.port, protocol: "grpc-go", eventId: BARE_EVENT_ID, servers: [bare.child] },
      "gw-connect": gw("connect-json"),
      "gw-grpcweb": gw("grpc-web"),
    }[side];
  };
  const runs: Run[] = [];
  for (let round = 0; round < A.rounds; round++) {
    if (round > 0) {
      await Promise.all([stop(events.child), stop(bare.child)]);
      [events, bare] = await Promise.all([startSeededEvents(), startBare()]);
    }
    // Rotate who goes first, so no side always meets the same machine state.
    const order = SIDES.map((_, i) => SIDES[(i + round) % SIDES.length]!);
    // The grpc-go sides take a few seconds each: run them GO_PAIRS times per round, alternating
    // which goes first, for more same-moment pairs of the two servers.
    const expanded = order.flatMap((side) => (side === "project-go" ? goPairs(round) : side === "bare-go" && SIDES.includes("project-go") ? [] : [side]));
    for (const side of expanded) {
      const { port, protocol, eventId, servers } = path(side);
      const pids = servers.map((child) => child.pid!);
      // The measured server's full GCs (the gateway has no IPC: the EventService behind it).
      const gcServer = servers[servers.length - 1]!;
      let cpu0: number[] = [];
      let gc0 = { fullGcs: 0, fullGcMs: 0 };
      const before = async () => {
        gc0 = await fullGcsOf(gcServer);
        cpu0 = pids.map(cpuOf);
      };
      let result: LoadResult;
      let clientCpuUsPerCall: number;
      if (protocol === "grpc-go") {
        const opts = { port, eventId, warmup: A.warmup, calls: A.calls, concurrency: A.concurrency };
        ({ clientCpuUsPerCall, ...result } = await runGrpcGoClient(grpcGo, opts, before));
      } else {
        const client = start("bench/load.ts", { TARGET_PORT: String(port), PROTOCOL: protocol, EVENT_ID: eventId });
        await message(client, "ready");
        client.send({ type: "run", calls: A.warmup, concurrency: A.concurrency });
        await message(client, "done");
        await before();
        const clientCpu0 = cpuOf(client.pid!);
        client.send({ type: "run", calls: A.calls, concurrency: A.concurrency });
        result = await message<LoadResult>(client, "done");
        clientCpuUsPerCall = (cpuOf(client.pid!) - clientCpu0) / A.calls;
        await stop(client);
      }
      const cpu1 = pids.map(cpuOf);
      const gc1 = await fullGcsOf(gcServer);
      const { type: _t, ...r } = result as LoadResult & { type?: string };
      const perCall = pids.map((_, i) => (cpu1[i]! - cpu0[i]!) / A.calls);
      const run: Run = {
        side,
        round,
        ...r,
        serverCpuUsPerCall: perCall.reduce((s, x) => s + x, 0),
        clientCpuUsPerCall,
        fullGcs: gc1.fullGcs - gc0.fullGcs,
        fullGcMs: round2(gc1.fullGcMs - gc0.fullGcMs),
      };
      if (pids.length > 1) run.gatewayCpuUsPerCall = perCall[0];
      runs.push(run);
      console.error(
        `(a/b) round ${round} ${side.padEnd(10)} ${r.callsPerSec.toFixed(0)} calls/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms  server cpu ${run.serverCpuUsPerCall.toFixed(1)} µs/call  client cpu ${clientCpuUsPerCall.toFixed(1)} µs/call  full GCs ${run.fullGcs} (${run.fullGcMs.toFixed(0)} ms)  errors ${r.errors}`,
      );
    }
  }
  // The last round's (a) servers, and the gateway, which served every round of (b).
  const rssAfterLoad = { project: rssOf(events.child.pid!), bare: rssOf(bare.child.pid!), gateway: rssOf(gateway.pid!) };
  // What the RSS holds: V8's heap in use and committed (old-space garbage waits for the next full GC).
  const heapAfterLoad = { project: await heapOf(events.child), bare: await heapOf(bare.child) };
  await stop(events.child);
  await stop(bare.child);
  await stop(upstream.child);
  await stop(gateway, "SIGTERM");

  const summary = (side: Side) => {
    const rs = runs.filter((r) => r.side === side);
    const gw = rs.flatMap((r) => (r.gatewayCpuUsPerCall === undefined ? [] : [r.gatewayCpuUsPerCall]));
    return {
      callsPerSec: median(rs.map((r) => r.callsPerSec)),
      p50Ms: median(rs.map((r) => r.p50Ms)),
      p90Ms: median(rs.map((r) => r.p90Ms)),
      p99Ms: median(rs.map((r) => r.p99Ms)),
      serverCpuUsPerCall: median(rs.map((r) => r.serverCpuUsPerCall)),
      gatewayCpuUsPerCall: gw.length ? median(gw) : undefined,
      clientCpuUsPerCall: median(rs.map((r) => r.clientCpuUsPerCall)),
      errors: rs.reduce((n, r) => n + r.errors, 0),
      fullGcsPerRun: rs.map((r) => r.fullGcs),
    };
  };
  const summaries = Object.fromEntries(SIDES.map((s) => [s, summary(s)])) as Record<Side, ReturnType<typeof summary>>;
  return { params: { ...A, browserClient }, runs, summary: summaries, rssIdle, rssAfterLoad, heapAfterLoad };
}

// ---------------------------------------------------------------- scenario (e)

/**
 * What is cold-started: every process of the mesh as the start scripts run
 * it (dist/), and events under tsx for comparison. The services are ready
 * at their first SERVING health answer; the gateway, which serves no
 * grpc.health of its own, when its /readyz answers 200 (no upstreams
 * configured, so that only its own start is measured).
 */
const NO_UPSTREAMS = { EVENTS_URL: "none", BOOKINGS_URL: "none", NOTIFICATIONS_URL: "none", WEB_ROOT: "/nonexistent" };
const COLD = [
  { name: "events", script: "services/events/main.ts", viaTsx: false },
  { name: "bookings", script: "services/bookings/main.ts", viaTsx: false },
  { name: "notifications", script: "services/notifications/main.ts", viaTsx: false },
  { name: "gateway", script: "gateway/main.ts", viaTsx: false, env: NO_UPSTREAMS, readyz: true },
  { name: "events (tsx)", script: "services/events/main.ts", viaTsx: true },
] as const;
type ColdName = (typeof COLD)[number]["name"];
interface RunE {
  service: ColdName;
  round: number;
  msToServing: number;
  rssAtServing: number;
  rssIdle1s: number;
}

async function scenarioE() {
  const runs: RunE[] = [];
  for (let round = 0; round < COLD_RUNS; round++) {
    const order = COLD.map((_, i) => COLD[(i + round) % COLD.length]!);
    for (const cold of order) {
      const { name, script, viaTsx } = cold;
      const port = await freePort();
      const adminPort = await freePort();
      const t0 = performance.now();
      const env = { PORT: String(port), ADMIN_PORT: String(adminPort), HOST: "127.0.0.1", LOG_LEVEL: "info", ...("env" in cold ? cold.env : {}) };
      const child = start(script, env, { viaTsx, stdio: "none", service: true });
      if ("readyz" in cold) await untilReady(`http://127.0.0.1:${adminPort}/readyz`, 30_000, 10);
      else await untilServing(port, 30_000);
      const msToServing = performance.now() - t0;
      const rssAtServing = rssOf(child.pid!);
      await sleep(1_000);
      const rssIdle1s = rssOf(child.pid!);
      await stop(child, "SIGTERM");
      runs.push({ service: name, round, msToServing, rssAtServing, rssIdle1s });
      console.error(`(e) round ${round} ${name.padEnd(13)} ${msToServing.toFixed(0)} ms to SERVING, RSS ${(rssIdle1s / 2 ** 20).toFixed(1)} MiB idle`);
    }
  }
  const summary = (service: ColdName) => {
    const rs = runs.filter((r) => r.service === service);
    return { msToServing: median(rs.map((r) => r.msToServing)), rssIdle1s: median(rs.map((r) => r.rssIdle1s)) };
  };
  return { runs, summary: Object.fromEntries(COLD.map((c) => [c.name, summary(c.name)])) as Record<ColdName, ReturnType<typeof summary>> };
}

// ------------------------------------------- scenario (d), written elsewhere

/**
 * Scenario (d), notification latency: `bench/notification-latency.ts` in its
 * own process (it starts its own services, broker vhost and FerretDB), whose
 * markdown report becomes a section of latest.md. Measured twice: on FerretDB
 * at a rate its booking path sustains (see (c)), and on the embedded stores at
 * 50/s, where the notification path alone is what is measured.
 */
const D_RUNS: { label: string; args: string[] }[] = [
  { label: "FerretDB, 10 bookings/s", args: ["--rate", "10"] },
  { label: "embedded stores, 50 bookings/s", args: ["--embedded-store", "--rate", "50"] },
];

async function scenarioD(): Promise<{ markdown: string; data: unknown }> {
  const sections: string[] = [];
  for (const { label, args } of D_RUNS) {
    const child = spawn(process.execPath, ["--import", "tsx", "bench/notification-latency.ts", ...args, ...(quick ? ["--quick"] : [])], {
      cwd: ROOT,
      stdio: ["ignore", "inherit", "inherit"],
    });
    const [code] = (await once(child, "exit")) as [number | null];
    if (code !== 0) throw new Error(`bench/notification-latency.ts ${args.join(" ")} exited with ${code}`);
    // Each run rewrites notification-latency.md: read it before the next one.
    const report = readFileSync(`${ROOT}bench/results/notification-latency.md`, "utf8");
    sections.push(report.replace(/^# .*$/m, `### ${label}`));
  }
  return { markdown: `## (d) Notification latency\n\n${sections.join("\n\n")}`, data: { runs: D_RUNS.map((r) => r.label), report: "bench/results/notification-latency-*.json" } };
}

// ------------------------------------------------ scenario (c), bench/booking.ts

/**
 * Scenario (c), CreateBooking end to end: `bench/booking.ts` starts its own
 * gateway, services, FerretDB and broker vhost; its markdown becomes a
 * section of latest.md.
 */
async function scenarioC(): Promise<{ markdown: string; data: unknown }> {
  const { run } = await import("./booking.js");
  return run({ quick });
}

// ---------------------------------------------------------------- report

// The machine may be shared: the ratios come from the same rounds.
const machine = { ...machineInfo(), quick };
console.error(`machine: ${machine.cores} cores, ${machine.cpuModel}, Node ${machine.node}, load ${machine.loadBefore.toFixed(2)}${quick ? " (--quick)" : ""}`);
// Cold starts first, on the machine as it was found: after (c) and (d) FerretDB and the broker
// are still settling, which added hundreds of ms to every start in one recorded run.
const e = abOnly ? undefined : await scenarioE();
const ab = await scenarioAB();
if (abOnly || !e) {
  for (const side of SIDES) console.log(side, JSON.stringify(ab.summary[side]));
  console.log("rss", JSON.stringify({ idle: ab.rssIdle, afterLoad: ab.rssAfterLoad, heapAfterLoad: ab.heapAfterLoad }));
  process.exit(0);
}
const c = await scenarioC();
const d = await scenarioD();
machine.loadAfter = round2(loadavg()[0]!);

mkdirSync(`${ROOT}bench/results`, { recursive: true });
const stamp = machine.date.replace(/[:.]/g, "-");
writeFileSync(`${ROOT}bench/results/${stamp}.json`, JSON.stringify({ machine, ab, c: c.data, d: d?.data, e }, null, 2) + "\n");

/** Project/bare calls/s within each round: the sides minutes apart, so drift between rounds cancels. */
const pairedRatios = (project: Side, bare: Side) =>
  Array.from({ length: A.rounds }, (_, round) => {
    // The k-th run of one side in a round goes with the k-th of the other.
    const of = (side: Side) => ab.runs.filter((r) => r.round === round && r.side === side).map((r) => r.callsPerSec);
    const [p, b] = [of(project), of(bare)];
    return p.map((x, k) => x / b[k]!);
  }).flat();
const pairedJs = pairedRatios("project", "bare");
const pairedGo = pairedRatios("project-go", "bare-go");
const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
const heap = (h: { used: number; total: number }) => `${(h.used / 2 ** 20).toFixed(0)} / ${(h.total / 2 ** 20).toFixed(0)} MiB used / committed`;
const s = ab.summary;
const row = (label: string, x: (typeof s)[Side], rss: string) =>
  `| ${label} | ${x.callsPerSec.toFixed(0)} | ${x.p50Ms.toFixed(2)} | ${x.p90Ms.toFixed(2)} | ${x.p99Ms.toFixed(2)} | ${x.serverCpuUsPerCall.toFixed(1)} | ${x.clientCpuUsPerCall.toFixed(1)} | ${x.errors} | ${rss} |`;
const ratio = (label: string, x: (typeof s)[Side], y: (typeof s)[Side]) =>
  `| **${label}** | ${(x.callsPerSec / y.callsPerSec).toFixed(2)} | ${(x.p50Ms / y.p50Ms).toFixed(2)} | ${(x.p90Ms / y.p90Ms).toFixed(2)} | ${(x.p99Ms / y.p99Ms).toFixed(2)} | ${(x.serverCpuUsPerCall / y.serverCpuUsPerCall).toFixed(2)} | ${(x.clientCpuUsPerCall / y.clientCpuUsPerCall).toFixed(2)} | | |`;
const HEAD = `| | calls/s | p50 ms | p90 ms | p99 ms | server CPU µs/call | client CPU µs/call | errors | RSS idle → after load |
|---|---:|---:|---:|---:|---:|---:|---:|---:|`;
const md = `# Benchmark results

${machine.date} · ${machine.cores} cores · ${machine.cpuModel} · Node ${machine.node}${quick ? " · **--quick**" : ""} ·
load average (1 min) ${machine.loadBefore.toFixed(2)} before, ${machine.loadAfter.toFixed(2)} after

${A.calls} calls per side and round at concurrency ${A.concurrency}, after ${A.warmup} warm-up calls; ${A.rounds} rounds, the
six sides of (a) and (b) rotating their order each round (the grpc-go pair ${GO_PAIRS} times per round, alternating which goes first); medians over runs.
Every process runs the build in \`dist/\`.
Server CPU = user + system time of the server processes on the call's path (\`/proc/<pid>/stat\`) over the measured calls, per call;
client CPU the same for the load client (one process, the same client code for every side of a table).

## (a) Unary GetEvent over gRPC (one HTTP/2 connection; two servers, each started afresh every round; two load clients)

With grpc-go (\`bench/grpc-load\`, 10 s deadline per call, one OS thread) the server runs out of CPU first: this compares the servers.
With @grpc/grpc-js the client spends more CPU per call than either server and sets the pace on two cores: this compares client + server.

${HEAD}
${row("project (EventService, runtime, LOG_LEVEL=info), grpc-go client", s["project-go"], "")}
${row("bare @grpc/grpc-js, grpc-go client", s["bare-go"], "")}
${ratio("ratio project/bare, grpc-go client", s["project-go"], s["bare-go"])}
${row("project, @grpc/grpc-js client", s.project, `${mib(ab.rssIdle.project)} → ${mib(ab.rssAfterLoad.project)} (heap ${heap(ab.heapAfterLoad.project)})`)}
${row("bare @grpc/grpc-js, @grpc/grpc-js client", s.bare, `${mib(ab.rssIdle.bare)} → ${mib(ab.rssAfterLoad.bare)} (heap ${heap(ab.heapAfterLoad.bare)})`)}
${ratio("ratio project/bare, @grpc/grpc-js client", s.project, s.bare)}

Project/bare calls/s within each round (the two sides seconds to minutes apart, so machine drift between rounds cancels):
grpc-go client ${pairedGo.map((r) => r.toFixed(2)).join(", ")} (median ${median(pairedGo).toFixed(2)});
@grpc/grpc-js client ${pairedJs.map((r) => r.toFixed(2)).join(", ")} (median ${median(pairedJs).toFixed(2)}).

Both servers are started afresh every round, the project's with \`node ${SERVICE_NODE_FLAGS.join(" ")}\` as its start scripts do (bench/README.md finding 17), bare with node's defaults. Full GCs in the server during each run's measured calls, in run order
(a process that settled into promoting most of each call to the old space has several times more; bench/README.md finding 16):
project ${s["project-go"].fullGcsPerRun.join(" ")} (grpc-go), ${s.project.fullGcsPerRun.join(" ")} (grpc-js);
bare ${s["bare-go"].fullGcsPerRun.join(" ")} (grpc-go), ${s.bare.fullGcsPerRun.join(" ")} (grpc-js).

## (b) The same GetEvent through the gateway (as a browser sends it; load from ${ab.params.browserClient})

${HEAD}
${row(`Connect JSON → gateway → gRPC → EventService (gateway ${s["gw-connect"].gatewayCpuUsPerCall?.toFixed(1)} µs)`, s["gw-connect"], `gateway ${mib(ab.rssIdle.gateway)} → ${mib(ab.rssAfterLoad.gateway)}`)}
${row(`gRPC-Web → gateway → gRPC → EventService (gateway ${s["gw-grpcweb"].gatewayCpuUsPerCall?.toFixed(1)} µs)`, s["gw-grpcweb"], "")}
${ratio("ratio Connect JSON/(a) project", s["gw-connect"], s.project)}
${ratio("ratio gRPC-Web/(a) project", s["gw-grpcweb"], s.project)}

Per round (calls/s): ${ab.runs.map((r) => `${r.side} ${r.callsPerSec.toFixed(0)}`).join(", ")}

${c.markdown}
${d ? `\n${d.markdown}\n` : ""}
## (e) Cold start to SERVING

\`node ${SERVICE_NODE_FLAGS.join(" ")} dist/services/<svc>/main.js\` and \`node ${SERVICE_NODE_FLAGS.join(" ")} dist/gateway/main.js\` (as \`npm run start:<svc>\`), and events under \`tsx\` for comparison;
embedded defaults (no MONGODB_URL/AMQP_URL; the gateway without upstreams); from spawn to the first SERVING answer of
\`grpc.health.v1.Health/Check\` (the gateway: its admin port's \`/readyz\` answering 200), polled every 10 ms;
${COLD_RUNS} runs each, rotating; medians.

| service | ms to SERVING | RSS 1 s after SERVING | runs (ms) |
|---|---:|---:|---|
${COLD.map((c) => `| ${c.name} | ${e.summary[c.name].msToServing.toFixed(0)} | ${mib(e.summary[c.name].rssIdle1s)} | ${e.runs.filter((r) => r.service === c.name).map((r) => r.msToServing.toFixed(0)).join(", ")} |`).join("\n")}

Raw data: \`bench/results/${stamp}.json\`.
`;
writeFileSync(`${ROOT}bench/results/latest.md`, md);
process.stdout.write(md);
