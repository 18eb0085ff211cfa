// `npm run soak`: a steady mixed load through the edge (list and get events,
// create, list and cancel bookings) against the mesh as separate processes
// (FerretDB, RabbitMQ), recording throughput, error rate, p99 and each
// process's RSS over time into bench/results/ (soak-<time>.json and
// soak-latest.md). Fails on RSS growth above 20% after warm-up, an error
// rate above 0.1%, or a broken invariant at the end.
//
//   npm run soak -- [--minutes 10] [--warmup-seconds N] [--interval-seconds 10] [--concurrency 4]
//
// SOAK_MINUTES sets the default duration too.
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Code } from "@connectrpc/connect";
import { MongoClient } from "mongodb";
import { createEvents, edgeClients } from "../test/faults/client.js";
import { checkInvariants, verdictProblems } from "../test/faults/invariants.js";
import { BookingLoad, type CallSample } from "../test/faults/load.js";
import { deleteVhost, exitOnInterrupt, isolatedAmqpUrl, Mesh, ROOT, SERVICE_NAMES } from "../test/faults/mesh.js";
import { MessageTap } from "../test/faults/tap.js";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: process.env.SOAK_MINUTES ?? "10" },
    "warmup-seconds": { type: "string" },
    "interval-seconds": { type: "string", default: "10" },
    concurrency: { type: "string", default: "4" },
    out: { type: "string", default: join(ROOT, "bench/results") },
  },
});
const durationMs = Number(values.minutes) * 60_000;
// Warm-up: JIT, connection pools and caches fill; memory is judged after it.
const warmupMs = values["warmup-seconds"] ? Number(values["warmup-seconds"]) * 1000 : Math.min(120_000, durationMs / 4);
const intervalMs = Number(values["interval-seconds"]) * 1000;
const MAX_RSS_GROWTH = 0.2;
const MAX_ERROR_RATE = 0.001;

interface Window {
  /** Seconds since the start of the load. */
  t: number;
  calls: number;
  callsPerSecond: number;
  errors: number;
  errorRate: number;
  p50Ms: number;
  p99Ms: number;
  rssMiB: Record<string, number>;
}

/** Sold out is an answer, not an error; everything else that is not OK is. */
const isError = (s: CallSample) => s.code !== undefined && s.code !== Code.FailedPrecondition;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;
const mib = (bytes: number) => round(bytes / 1024 / 1024);

exitOnInterrupt();
const { url: amqpUrl, isolated } = await isolatedAmqpUrl(process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672");
const logDir = join(tmpdir(), `myevents-soak-${Date.now()}`);
console.log(`soak: ${values.minutes} min (warm-up ${warmupMs / 1000} s), concurrency ${values.concurrency}; process logs in ${logDir}`);
// The services' own defaults (no faults here, so none of the fault suite's short recovery
// timings: recovery scans every 5 s as in production, not every 0.5 s).
const mesh = await Mesh.start({ amqpUrl, logDir });
const db = await MongoClient.connect(mesh.mongodbUrl);
// Counts the ReservationUndone messages recovery may publish (the invariants expect them to be applied too).
const tap = new MessageTap(amqpUrl, ["booking.reservation_undone"]);
await tap.start();
const started = new Date();
const windows: Window[] = [];
const problems: string[] = [];
let afterWarmup = { calls: 0, errors: 0 };
let codes: Record<string, number> = {};
try {
  const clients = edgeClients(mesh.edgeUrl);
  // One event that sells out (sold out stays part of the mix), two that never do.
  const events = await createEvents(clients, [200, 100_000, 100_000]);
  let current: CallSample[] = [];
  const load = new BookingLoad(clients, events, {
    concurrency: Number(values.concurrency),
    cancelRatio: 0.3,
    callTimeoutMs: 5_000,
    retryBudgetMs: 30_000,
    reads: true,
    users: 200,
    onSample: (s) => current.push(s),
  });
  load.scenario = "soak";
  const t0 = Date.now();
  load.start();
  while (Date.now() - t0 < durationMs) {
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, durationMs - (Date.now() - t0))));
    const samples = current;
    current = [];
    const elapsed = (Date.now() - t0) / 1000;
    const latencies = samples.filter((s) => !isError(s)).map((s) => s.ms).sort((a, b) => a - b);
    const errors = samples.filter(isError).length;
    const rssMiB = Object.fromEntries(SERVICE_NAMES.map((n) => [n, mib(mesh.processes[n].rss())]));
    const w: Window = {
      t: round(elapsed),
      calls: samples.length,
      callsPerSecond: round(samples.length / (intervalMs / 1000)),
      errors,
      errorRate: samples.length ? errors / samples.length : 0,
      p50Ms: round(percentile(latencies, 50)),
      p99Ms: round(percentile(latencies, 99)),
      rssMiB,
    };
    windows.push(w);
    if (elapsed * 1000 > warmupMs) afterWarmup = { calls: afterWarmup.calls + w.calls, errors: afterWarmup.errors + errors };
    console.log(`${w.t}s: ${w.callsPerSecond} calls/s, ${errors} errors, p50 ${w.p50Ms} ms, p99 ${w.p99Ms} ms, RSS ${JSON.stringify(rssMiB)} MiB, load ${loadavg()[0]!.toFixed(2)}`);
  }
  await load.stop();
  await load.retryInterrupted(60_000);
  codes = Object.fromEntries(load.codes);
  const verdict = await checkInvariants(mesh, db, events, load, 120_000, () => tap.drain());
  problems.push(...verdictProblems(verdict));
  const unanswered = load.requests.filter((r) => r.outcome === "interrupted" || r.outcome === "failed").length;
  if (unanswered > 0) problems.push(`${unanswered} booking request(s) never answered`);
} catch (err) {
  problems.push((err as Error).message);
} finally {
  await db.close();
  await tap.delete();
  await mesh.stop();
  if (isolated) await deleteVhost(amqpUrl);
}

// Memory: the first windows after warm-up against the last ones (medians, so one GC does not decide).
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const steady = windows.filter((w) => w.t * 1000 > warmupMs);
const span = Math.max(1, Math.min(3, Math.floor(steady.length / 3)));
const memory = Object.fromEntries(
  SERVICE_NAMES.map((n) => {
    const first = median(steady.slice(0, span).map((w) => w.rssMiB[n]!));
    const last = median(steady.slice(-span).map((w) => w.rssMiB[n]!));
    return [n, { afterWarmupMiB: first, endMiB: last, growth: round((last - first) / first, 3) }];
  }),
);
for (const [n, m] of Object.entries(memory)) {
  if (!(m.growth <= MAX_RSS_GROWTH)) problems.push(`${n}: RSS grew ${round(m.growth * 100)}% after warm-up (${m.afterWarmupMiB} -> ${m.endMiB} MiB)`);
}
const errorRate = afterWarmup.calls ? afterWarmup.errors / afterWarmup.calls : NaN;
if (!(errorRate <= MAX_ERROR_RATE)) problems.push(`error rate ${round(errorRate * 100, 3)}% after warm-up (limit ${MAX_ERROR_RATE * 100}%)`);
if (steady.length < 2) problems.push("too short to judge: fewer than two intervals after warm-up");

const totalCalls = windows.reduce((n, w) => n + w.calls, 0);
const result = {
  started: started.toISOString(),
  minutes: Number(values.minutes),
  warmupSeconds: warmupMs / 1000,
  intervalSeconds: intervalMs / 1000,
  concurrency: Number(values.concurrency),
  node: process.version,
  cores: cpus().length,
  loadAverageAtEnd: loadavg(),
  totalCalls,
  callsPerSecond: round(totalCalls / ((windows.at(-1)?.t ?? 1) || 1)),
  errorRateAfterWarmup: errorRate,
  p99MsMedian: median(steady.map((w) => w.p99Ms)),
  memory,
  codes,
  problems,
  windows,
};
const stamp = started.toISOString().replace(/[:.]/g, "-");
mkdirSync(values.out, { recursive: true });
writeFileSync(join(values.out, `soak-${stamp}.json`), `${JSON.stringify(result, null, 2)}\n`);
const md = [
  "# Soak results",
  "",
  `${result.started} · ${result.minutes} min (warm-up ${result.warmupSeconds} s) · concurrency ${result.concurrency} · ${result.cores} cores · Node ${result.node} · \`npm run soak\``,
  "",
  `Mixed load through the edge (per request: CreateBooking, 30% CancelBooking, ListEvents, GetEvent, ListBookings). ${totalCalls} calls, ${result.callsPerSecond} calls/s; error rate after warm-up ${round(errorRate * 100, 3)}% (limit ${MAX_ERROR_RATE * 100}%); median p99 ${result.p99MsMedian} ms; error codes: ${JSON.stringify(codes)}.`,
  "",
  "| process | RSS after warm-up | RSS at end | growth (limit 20%) |",
  "|---|---:|---:|---:|",
  ...Object.entries(memory).map(([n, m]) => `| ${n} | ${m.afterWarmupMiB} MiB | ${m.endMiB} MiB | ${round(m.growth * 100)}% |`),
  "",
  `| t (s) | calls/s | errors | p50 ms | p99 ms | RSS ${SERVICE_NAMES.join(" / ")} (MiB) |`,
  "|---:|---:|---:|---:|---:|---|",
  ...windows.map((w) => `| ${w.t} | ${w.callsPerSecond} | ${w.errors} | ${w.p50Ms} | ${w.p99Ms} | ${SERVICE_NAMES.map((n) => w.rssMiB[n]).join(" / ")} |`),
  "",
  problems.length ? `**FAILED**: ${problems.join("; ")}` : "**Passed**: no memory growth beyond 20% after warm-up, error rate within 0.1%, invariants hold.",
  "",
  `Raw data: \`bench/results/soak-${stamp}.json\`.`,
  "",
].join("\n");
writeFileSync(join(values.out, "soak-latest.md"), md);
console.log(`\n${md}`);
process.exit(problems.length ? 1 : 0);
