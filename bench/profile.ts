// One CPU profile of the project server under scenario (a)'s load:
// `node --import tsx bench/profile.ts` → bench/results/profile/*.cpuprofile and the top self-time functions.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { ROOT, freePort } from "./lib.js";

const dir = `${ROOT}bench/results/profile`;
rmSync(dir, { recursive: true, force: true });
const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(await freePort()), ADMIN_PORT: String(await freePort()) };
for (const k of ["MONGODB_URL", "AMQP_URL", "NODE_OPTIONS"]) delete env[k];
const server = spawn(process.execPath, ["--cpu-prof", "--cpu-prof-dir", dir, "--import", "tsx", "bench/servers/events.ts"], { cwd: ROOT, env, stdio: ["ignore", "ignore", "inherit", "ipc"] });
const [ready] = (await once(server, "message")) as [{ port: number }];
const client = spawn(process.execPath, ["--import", "tsx", "bench/load.ts"], { cwd: ROOT, env: { ...env, TARGET_PORT: String(ready.port), SEED: "1" }, stdio: ["ignore", "inherit", "inherit", "ipc"] });
await once(client, "message");
for (const calls of [5_000, 20_000]) {
  client.send({ type: "run", calls, concurrency: 64 });
  const [r] = (await once(client, "message")) as [{ callsPerSec: number }];
  console.error(`${calls} calls: ${r.callsPerSec.toFixed(0)} calls/s (profiled)`);
}
client.send({ type: "exit" });
server.send({ type: "exit" });
await once(server, "exit");

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; }
const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"))!;
const prof = JSON.parse(readFileSync(`${dir}/${file}`, "utf8")) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map<string, number>();
let total = 0;
prof.samples.forEach((id, i) => {
  const n = byId.get(id)!;
  const key = `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.replace(`file://${ROOT}`, "")}:${n.callFrame.lineNumber + 1}`;
  const dt = prof.timeDeltas[i] ?? 0;
  self.set(key, (self.get(key) ?? 0) + dt);
  total += dt;
});
const idle = [...self].filter(([k]) => k.startsWith("(idle)")).reduce((s, [, v]) => s + v, 0);
console.log(`profile ${file}: ${(total / 1e6).toFixed(2)} s sampled, ${(idle / 1e6).toFixed(2)} s idle`);
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
