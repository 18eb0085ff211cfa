// One CPU profile of a server under scenario (a)'s or (b)'s load, from the build in dist/:
//   npm run build && node --import tsx bench/profile.ts             the EventService, gRPC from grpc-js (a)
//   npm run build && node --import tsx bench/profile.ts --gateway   the gateway, Connect JSON over HTTP/1.1 (b)
//   npm run build && node --import tsx bench/profile.ts --gateway --grpc-web   the gateway, gRPC-Web over HTTP/1.1 (b)
// → bench/results/profile/*.cpuprofile and the top self-time functions.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { SERVICE_NODE_FLAGS } from "../services/runtime/node-flags.js";
import { ROOT, freePort } from "./lib.js";

const gatewaySide = process.argv.includes("--gateway");
const gatewayProtocol = process.argv.includes("--grpc-web") ? "grpc-web" : "connect-json";
const dir = `${ROOT}bench/results/profile`;
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
// One HS256 secret for the run, as in run.ts: the server verifies, the seeding client signs.
const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(await freePort()), ADMIN_PORT: String(await freePort()), JWT_SECRET: randomBytes(32).toString("base64url") };
for (const k of ["MONGODB_URL", "AMQP_URL", "EVENTS_URL", "NODE_OPTIONS"]) delete env[k];
const profiled = process.env.HEAP_PROF ? ["--heap-prof", "--heap-prof-dir", dir, "--heap-prof-interval", "32768"] : ["--cpu-prof", "--cpu-prof-dir", dir];
const children: ChildProcess[] = [];
const run = (args: string[], extra: NodeJS.ProcessEnv, stdio: "ipc" | "none" = "ipc"): ChildProcess => {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...env, ...extra }, stdio: stdio === "ipc" ? ["ignore", "ignore", "inherit", "ipc"] : ["ignore", "ignore", "inherit"] });
  children.push(child);
  // A child that fails would leave this script waiting for its message forever.
  child.once("exit", (code) => {
    if (code === 0 || code === null) return;
    console.error(`${args.at(-1)} exited with ${code}`);
    for (const c of children) c.kill();
    process.exit(1);
  });
  return child;
};

// ALLOC_PROF=1: the EventService samples its allocations instead (bench/servers/events.ts), no CPU profile;
// with ALLOC_PROF_OLD=1 only what reached the old space (what scavenges collected is left out).
const allocFile = process.env.ALLOC_PROF ? `${dir}/events.heapprofile` : undefined;
const server = run([...SERVICE_NODE_FLAGS, ...(gatewaySide || allocFile ? [] : profiled), "dist/bench/servers/events.js"], allocFile ? { BENCH_ALLOC_PROFILE: allocFile } : {});
const [ready] = (await once(server, "message")) as [{ port: number }];
let target = ready.port;
let gateway: ChildProcess | undefined;
if (gatewaySide) {
  target = await freePort();
  const admin = await freePort();
  // RATE_LIMIT_PER_SECOND=0 as in run.ts: the per-client limit would refuse most of the one client's calls.
  gateway = run([...SERVICE_NODE_FLAGS, ...profiled, "dist/gateway/main.js"], { RATE_LIMIT_PER_SECOND: "0", HOST: "127.0.0.1", PORT: String(target), ADMIN_PORT: String(admin), EVENTS_URL: `http://127.0.0.1:${ready.port}`, BOOKINGS_URL: "none", NOTIFICATIONS_URL: "none", WEB_ROOT: "/nonexistent" }, "none");
  while (!(await fetch(`http://127.0.0.1:${admin}/readyz`).then((r) => r.ok, () => false))) await sleep(50);
}
const seeder = run(["dist/bench/load.js"], { TARGET_PORT: String(ready.port), SEED: "1" });
const [{ eventId }] = (await once(seeder, "message")) as [{ eventId: string }];
seeder.send({ type: "exit" });
const client = run(["dist/bench/load.js"], { TARGET_PORT: String(target), EVENT_ID: eventId, PROTOCOL: gatewaySide ? gatewayProtocol : "grpc" });
await once(client, "message");
for (const calls of gatewaySide ? [2_000, 10_000] : [5_000, Number(process.env.PROFILE_CALLS ?? 20_000)]) {
  client.send({ type: "run", calls, concurrency: 64 });
  const [r] = (await once(client, "message")) as [{ callsPerSec: number }];
  console.error(`${calls} calls: ${r.callsPerSec.toFixed(0)} calls/s (profiled)`);
}
client.send({ type: "exit" });
if (gateway) {
  gateway.kill("SIGTERM");
  await once(gateway, "exit");
}
server.send({ type: "exit" });
await once(server, "exit");

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; }
const where = (n: Node) => `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.replace(`file://${ROOT}`, "")}:${n.callFrame.lineNumber + 1}`;
if (allocFile) {
  // Bytes allocated per measured call, by the function that allocated them.
  type AllocNode = Node & { selfSize: number; children: AllocNode[] };
  const head = (JSON.parse(readFileSync(allocFile, "utf8")) as { head: AllocNode }).head;
  const bytes = new Map<string, number>();
  let sum = 0;
  const walk = (n: AllocNode) => {
    bytes.set(where(n), (bytes.get(where(n)) ?? 0) + n.selfSize);
    sum += n.selfSize;
    n.children.forEach(walk);
  };
  walk(head);
  const calls = 5_000 + Number(process.env.PROFILE_CALLS ?? 20_000);
  console.log(`allocation profile ${allocFile}: ${(sum / calls).toFixed(0)} bytes per call (sampled, ${calls} calls)`);
  for (const [k, v] of [...bytes].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`${(v / calls).toFixed(0).padStart(6)} B  ${k}`);
  process.exit(0);
}
const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"))!;
const prof = JSON.parse(readFileSync(`${dir}/${file}`, "utf8")) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map<string, number>();
let total = 0;
prof.samples.forEach((id, i) => {
  const n = byId.get(id)!;
  const key = where(n);
  const dt = prof.timeDeltas[i] ?? 0;
  self.set(key, (self.get(key) ?? 0) + dt);
  total += dt;
});
const idle = [...self].filter(([k]) => k.startsWith("(idle)")).reduce((s, [, v]) => s + v, 0);
console.log(`profile ${file}: ${(total / 1e6).toFixed(2)} s sampled, ${(idle / 1e6).toFixed(2)} s idle`);
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
