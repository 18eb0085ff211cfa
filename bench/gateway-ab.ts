// The gateway with and without its unary fast path, in the same run:
//   npm run build && node --import tsx bench/gateway-ab.ts [--rounds N] [--calls N]
// One EventService, two gateways in front of it (GATEWAY_UNARY_FAST_PATH=on and off), and
// bench/load.ts as the browser-like client (Connect JSON and gRPC-Web over HTTP/1.1). Sides
// alternate within each round; prints calls/s and the gateway's CPU per call (/proc/<pid>/stat).
// A comparison tool for a shared machine, where absolute numbers mean little.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { loadavg } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { SERVICE_NODE_FLAGS } from "../services/runtime/node-flags.js";
import { ROOT, cpuOf, freePort } from "./lib.js";

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
};
const ROUNDS = arg("--rounds", 3);
const CALLS = arg("--calls", 5_000);
const WARMUP = 1_000;

const env: NodeJS.ProcessEnv = { ...process.env, JWT_SECRET: randomBytes(32).toString("base64url") };
for (const k of ["MONGODB_URL", "AMQP_URL", "EVENTS_URL", "NODE_OPTIONS"]) delete env[k];
const run = (args: string[], extra: NodeJS.ProcessEnv, ipc = true): ChildProcess =>
  spawn(process.execPath, args, { cwd: ROOT, env: { ...env, ...extra }, stdio: ipc ? ["ignore", "ignore", "inherit", "ipc"] : ["ignore", "ignore", "inherit"] });

const events = run([...SERVICE_NODE_FLAGS, "dist/bench/servers/events.js"], { PORT: String(await freePort()), ADMIN_PORT: String(await freePort()) });
const [ready] = (await once(events, "message")) as [{ port: number }];
const gateways: Array<{ name: string; port: number; process: ChildProcess }> = [];
for (const fastPath of ["on", "off"]) {
  const port = await freePort();
  const admin = await freePort();
  const gateway = run(
    [...SERVICE_NODE_FLAGS, "dist/gateway/main.js"],
    {
      GATEWAY_UNARY_FAST_PATH: fastPath,
      RATE_LIMIT_PER_SECOND: "0",
      LOG_LEVEL: "info",
      HOST: "127.0.0.1",
      PORT: String(port),
      ADMIN_PORT: String(admin),
      EVENTS_URL: `http://127.0.0.1:${ready.port}`,
      BOOKINGS_URL: "none",
      NOTIFICATIONS_URL: "none",
      WEB_ROOT: "/nonexistent",
    },
    false,
  );
  while (!(await fetch(`http://127.0.0.1:${admin}/readyz`).then((r) => r.ok, () => false))) await sleep(50);
  gateways.push({ name: `fast path ${fastPath}`, port, process: gateway });
}
const seeder = run(["dist/bench/load.js"], { TARGET_PORT: String(ready.port), SEED: "1" });
const [{ eventId }] = (await once(seeder, "message")) as [{ eventId: string }];
seeder.send({ type: "exit" });

console.log(`load average ${loadavg()[0]!.toFixed(2)} before; ${ROUNDS} rounds of ${CALLS} calls (after ${WARMUP}) at concurrency 64`);
for (let round = 0; round < ROUNDS; round++) {
  // Alternate which gateway goes first.
  const order = round % 2 === 0 ? gateways : [...gateways].reverse();
  for (const gw of order) {
    for (const protocol of ["connect-json", "grpc-web"]) {
      const client = run(["dist/bench/load.js"], { TARGET_PORT: String(gw.port), EVENT_ID: eventId, PROTOCOL: protocol });
      await once(client, "message");
      client.send({ type: "run", calls: WARMUP, concurrency: 64 });
      await once(client, "message");
      const before = cpuOf(gw.process.pid!);
      client.send({ type: "run", calls: CALLS, concurrency: 64 });
      const [r] = (await once(client, "message")) as [{ callsPerSec: number; errors: number }];
      const gatewayUs = (cpuOf(gw.process.pid!) - before) / CALLS;
      client.send({ type: "exit" });
      console.log(`round ${round} ${gw.name.padEnd(12)} ${protocol.padEnd(12)} ${r.callsPerSec.toFixed(0).padStart(5)} calls/s  gateway ${gatewayUs.toFixed(0).padStart(5)} µs/call  errors ${r.errors}`);
    }
  }
}
console.log(`load average ${loadavg()[0]!.toFixed(2)} after`);
for (const gw of gateways) gw.process.kill("SIGTERM");
events.send({ type: "exit" });
await once(events, "exit");
process.exit(0);
