// Scenario (c) of issue 7: CreateBooking end to end, and the highest rate
// whose p99 stays under 50 ms.
//
//   node --import tsx bench/booking.ts [--quick] [--profile]
//   (or as part of `npm run bench`, which calls run({ quick }))
//
// The path: this process (Connect JSON over HTTP/1.1, as a browser) → the
// gateway → BookingService → EventService (lookup of an event it has not
// heard of) → FerretDB → the booking's outbox → RabbitMQ (publisher
// confirm) → a consumer bound here to the exchange. The gateway, the
// EventService and the BookingService each run as their own process from
// the build in dist/; FerretDB is a throwaway instance (SQLite) started the
// way the tests start it (or MONGODB_URL); the broker is AMQP_URL, else the
// local RabbitMQ's vhost "myevents-bench".
//
// Open loop in steps of rising rate: bookings leave every 1/rate s whatever
// the answers do. A step passes when p99 <= 50 ms, no call failed and the
// answers kept pace with the rate; after the first failing step the rate
// is bisected between the best pass and that failure. Two workloads: the
// bookings spread round-robin over 50 events, and all on one hot event.
// `--profile`: the BookingService runs with --cpu-prof (written to
// bench/results/profile/ when it exits).
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fromBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { connect } from "amqplib";
import { BookingConfirmedSchema } from "../gen/myevents/v1/domain_events_pb.js";
import { BookingService } from "../gen/myevents/v1/booking_service_pb.js";
import { EventService } from "../gen/myevents/v1/event_service_pb.js";
import { startFerretDB, type FerretDB } from "../scripts/ferretdb/server.js";
import { declareTopology } from "../scripts/rabbitmq-vhost.js";
import { EXCHANGE } from "../services/messaging/port.js";
import { authHeader } from "../services/runtime/auth/testing.js";
import { benchBroker, deleteServiceQueues, startChild, stopChild, type BenchChild } from "./children.js";
import { ROOT, cpuOf, latencySummary, machineInfo, round2, type MachineInfo } from "./lib.js";

export interface BookingBenchOptions {
  quick?: boolean;
  /** Run the BookingService under --cpu-prof. */
  profile?: boolean;
}

const P99_TARGET_MS = 50;
const CALL_TIMEOUT_MS = 5_000;
const MANY_EVENTS = 50;
const USERS = 20;
const PROCESSES = ["gateway", "bookings", "events", "ferretdb"] as const;
type ProcessName = (typeof PROCESSES)[number];

interface StepResult {
  rate: number;
  seconds: number;
  sent: number;
  ok: number;
  /** Failed calls by code name. */
  errors: Record<string, number>;
  /** The first message seen for each failing code. */
  errorMessages: Record<string, string>;
  answeredPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** CPU time (user + system) per successful booking, per process, µs. */
  cpuUsPerCall: Record<ProcessName, number>;
  /** Share of one core each process used over the step. */
  coreShare: Record<ProcessName, number>;
  /** Latency of the failed calls (load shedding should make them quick). */
  failedP99Ms: number;
  /** From CreateBooking's response to the BookingConfirmed arriving at the bench's queue. */
  outbox: { p50Ms: number; p99Ms: number; maxMs: number; missing: number };
  pass: boolean;
}

interface WorkloadResult {
  workload: string;
  events: number;
  steps: StepResult[];
  best: StepResult | undefined;
  /** One step far over capacity: how the overload is answered. */
  overload: StepResult;
}

function log(line: string) {
  process.stderr.write(`[booking] ${line}\n`);
}

export async function run(options: BookingBenchOptions = {}): Promise<{ markdown: string; data: unknown }> {
  const quick = options.quick ?? false;
  const stepSeconds = quick ? 4 : 10;
  const bisections = quick ? 1 : 3;
  const ladder = [5, 10, 20, 40, 80, 160, 320, 640];
  const broker = benchBroker();
  const machine = machineInfo();
  const runId = randomBytes(3).toString("hex");
  const jwtSecret = randomBytes(32).toString("base64url");
  let ferret: FerretDB | undefined;
  const children: BenchChild[] = [];
  let amqp: Awaited<ReturnType<typeof connect>> | undefined;
  try {
    let mongodbUrl = process.env.MONGODB_URL;
    let storeNote = "MONGODB_URL";
    if (!mongodbUrl) {
      ferret = await startFerretDB();
      mongodbUrl = ferret.url;
      storeNote = "throwaway FerretDB 1.24 (SQLite backend)";
    }
    log(`broker: ${broker.note}; store: ${storeNote}`);
    await declareTopology(broker.url);
    const common = { JWT_SECRET: jwtSecret, AMQP_URL: broker.url, MONGODB_URL: mongodbUrl };
    const events = await startChild("events", ["dist/services/events/main.js"], { ...common, EVENTS_DATABASE: `bench_c_events_${runId}` });
    children.push(events);
    const profileArgs = options.profile ? ["--cpu-prof", `--cpu-prof-dir=${ROOT}bench/results/profile`] : [];
    const bookings = await startChild("bookings", [...profileArgs, "dist/services/bookings/main.js"], {
      ...common,
      BOOKINGS_DATABASE: `bench_c_bookings_${runId}`,
      EVENTS_URL: events.url,
    });
    children.push(bookings);
    const gateway = await startChild("gateway", ["dist/gateway/main.js"], {
      JWT_SECRET: jwtSecret,
      EVENTS_URL: events.url,
      BOOKINGS_URL: bookings.url,
      NOTIFICATIONS_URL: "none",
      RATE_LIMIT_PER_SECOND: "0", // one client address sends everything here
    }, { httpReady: true });
    children.push(gateway);
    const pids: Record<ProcessName, number | undefined> = {
      gateway: gateway.process.pid,
      bookings: bookings.process.pid,
      events: events.process.pid,
      ferretdb: ferret?.pid,
    };

    // The consumer: arrival of each BookingConfirmed, by booking id.
    const arrivals = new Map<string, number>();
    amqp = await connect(broker.url);
    const channel = await amqp.createChannel();
    const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
    await channel.bindQueue(queue, EXCHANGE, "booking.confirmed");
    await channel.consume(
      queue,
      (msg) => {
        if (!msg) return;
        const event = fromBinary(BookingConfirmedSchema, msg.content);
        if (event.booking) arrivals.set(event.booking.id, performance.now());
      },
      { noAck: true },
    );

    // The events: capacity 0 means the whole hall.
    const admin = (await authHeader("bench-admin", { admin: true, secret: jwtSecret })).authorization;
    const eventsClient = createClient(EventService, createGrpcTransport({ baseUrl: events.url }));
    const { location } = await eventsClient.createLocation(
      { location: { name: "Bench Arena", country: "DE", halls: [{ name: "Main", capacity: 100_000 }] } },
      { headers: { authorization: admin } },
    );
    const startAt = Date.now() + 86_400_000;
    const newEvent = async (name: string) =>
      (
        await eventsClient.createEvent(
          { event: { name, locationId: location!.id, hall: "Main", startTime: timestampFromDate(new Date(startAt)), endTime: timestampFromDate(new Date(startAt + 7_200_000)) } },
          { headers: { authorization: admin } },
        )
      ).event!.id;
    const spread: string[] = [];
    for (let i = 0; i < MANY_EVENTS; i++) spread.push(await newEvent(`Bench night ${i}`));
    const hot = await newEvent("Bench hot night");

    const users = await Promise.all(Array.from({ length: USERS }, (_, i) => authHeader(`bench-user-${i}`, { secret: jwtSecret }).then((h) => h.authorization)));
    const client = createClient(BookingService, createConnectTransport({ baseUrl: gateway.url, httpVersion: "1.1", useBinaryFormat: false }));
    let seq = 0;

    const step = async (rate: number, eventIds: string[], seconds: number): Promise<StepResult> => {
      interface Sample { sentAt: number; respondedAt?: number; bookingId?: string; code?: string; message?: string }
      const total = Math.max(1, Math.round(rate * seconds));
      const samples: Sample[] = [];
      const inflight: Promise<void>[] = [];
      const cpuBefore = Object.fromEntries(PROCESSES.map((p) => [p, pids[p] ? cpuOf(pids[p]!) : NaN])) as Record<ProcessName, number>;
      const t0 = performance.now();
      for (let i = 0; i < total; i++) {
        const due = t0 + (i * 1000) / rate;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        const n = seq++;
        const sample: Sample = { sentAt: performance.now() };
        samples.push(sample);
        inflight.push(
          client
            .createBooking(
              { eventId: eventIds[n % eventIds.length]!, seats: 1, requestId: `${runId}-${n}` },
              { timeoutMs: CALL_TIMEOUT_MS, headers: { authorization: users[n % USERS]! } },
            )
            .then(
              (res) => {
                sample.respondedAt = performance.now();
                sample.bookingId = res.booking!.id;
              },
              (err: unknown) => {
                sample.respondedAt = performance.now();
                const error = ConnectError.from(err);
                sample.code = Code[error.code];
                sample.message = error.rawMessage;
              },
            ),
        );
      }
      await Promise.all(inflight);
      const elapsed = (performance.now() - t0) / 1000;
      const cpuAfter = Object.fromEntries(PROCESSES.map((p) => [p, pids[p] ? cpuOf(pids[p]!) : NaN])) as Record<ProcessName, number>;
      const ok = samples.filter((s) => s.bookingId !== undefined);
      // Let the outbox catch up before judging it (and before the next step).
      const drainUntil = performance.now() + 10_000;
      while (performance.now() < drainUntil && ok.some((s) => !arrivals.has(s.bookingId!))) await sleep(20);
      const errors: Record<string, number> = {};
      const errorMessages: Record<string, string> = {};
      for (const s of samples) {
        if (!s.code) continue;
        errors[s.code] = (errors[s.code] ?? 0) + 1;
        errorMessages[s.code] ??= s.message ?? "";
      }
      const answered = ok.map((s) => s.respondedAt!);
      const answeredPerSec = answered.length > 1 ? (answered.length - 1) / ((Math.max(...answered) - Math.min(...answered)) / 1000) : 0;
      const lat = latencySummary(ok.map((s) => s.respondedAt! - s.sentAt));
      const lag = latencySummary(ok.filter((s) => arrivals.has(s.bookingId!)).map((s) => arrivals.get(s.bookingId!)! - s.respondedAt!));
      const cpuUsPerCall = {} as Record<ProcessName, number>;
      const coreShare = {} as Record<ProcessName, number>;
      for (const p of PROCESSES) {
        cpuUsPerCall[p] = Math.round((cpuAfter[p] - cpuBefore[p]) / Math.max(1, ok.length));
        coreShare[p] = round2((cpuAfter[p] - cpuBefore[p]) / 1e6 / elapsed);
      }
      const failed = samples.length - ok.length;
      const failedLat = latencySummary(samples.filter((s) => s.code).map((s) => s.respondedAt! - s.sentAt));
      const result: StepResult = {
        rate,
        seconds: round2(elapsed),
        sent: samples.length,
        ok: ok.length,
        errors,
        errorMessages,
        answeredPerSec: round2(answeredPerSec),
        ...lat,
        failedP99Ms: failedLat.p99Ms,
        cpuUsPerCall,
        coreShare,
        outbox: { p50Ms: lag.p50Ms, p99Ms: lag.p99Ms, maxMs: lag.maxMs, missing: ok.filter((s) => !arrivals.has(s.bookingId!)).length },
        pass: failed === 0 && lat.p99Ms <= P99_TARGET_MS && answeredPerSec >= rate * 0.9,
      };
      log(
        `${rate}/s: ok ${ok.length}/${samples.length} p50 ${lat.p50Ms} p99 ${lat.p99Ms} ms, answered ${result.answeredPerSec}/s, errors ${JSON.stringify(errors)}, ` +
          `outbox p99 ${lag.p99Ms} ms (missing ${result.outbox.missing}), µs/call ${JSON.stringify(cpuUsPerCall)} → ${result.pass ? "pass" : "FAIL"}` +
          (failed ? `; first errors: ${JSON.stringify(errorMessages)}` : ""),
      );
      await sleep(500);
      return result;
    };

    const workload = async (name: string, eventIds: string[]): Promise<WorkloadResult> => {
      log(`workload: ${name}`);
      await step(10, eventIds, quick ? 1 : 2); // warm-up: connections, JIT, first lookups of each event
      const steps: StepResult[] = [];
      let best: StepResult | undefined;
      let failedAt: number | undefined;
      for (const rate of ladder) {
        const r = await step(rate, eventIds, stepSeconds);
        steps.push(r);
        if (r.pass) best = r;
        else {
          failedAt = rate;
          break;
        }
      }
      let low = best?.rate ?? 0;
      let high = failedAt;
      for (let i = 0; i < bisections && high !== undefined && high - low > Math.max(2, low * 0.1); i++) {
        const rate = Math.round((low + high) / 2);
        const r = await step(rate, eventIds, stepSeconds);
        steps.push(r);
        if (r.pass) {
          best = r;
          low = rate;
        } else high = rate;
      }
      // Far over capacity: calls should be refused quickly (Unavailable), not pile up into timeouts.
      const overload = await step(Math.max(40, 4 * (high ?? ladder.at(-1)!)), eventIds, quick ? 2 : 5);
      return { workload: name, events: eventIds.length, steps, best, overload };
    };

    // What the mesh costs with no bookings at all (relay polls, recovery rounds, health checks), in cores.
    const idleSeconds = quick ? 3 : 10;
    const idleBefore = PROCESSES.map((p) => (pids[p] ? cpuOf(pids[p]!) : NaN));
    await sleep(idleSeconds * 1000);
    const idleCores = Object.fromEntries(PROCESSES.map((p, i) => [p, pids[p] ? round2((cpuOf(pids[p]!) - idleBefore[i]!) / 1e6 / idleSeconds) : NaN])) as Record<ProcessName, number>;
    log(`idle: cores used ${JSON.stringify(idleCores)}`);

    const results = [await workload(`spread over ${MANY_EVENTS} events`, spread), await workload("one hot event", [hot])];
    machine.loadAfter = round2(loadavg()[0]!);
    const data = { scenario: "c: CreateBooking end to end", machine, quick, stepSeconds, p99TargetMs: P99_TARGET_MS, broker: broker.note, store: storeNote, idleCores, results };
    return { markdown: markdown(data), data };
  } finally {
    await amqp?.close().catch(() => {});
    for (const child of children.reverse()) await stopChild(child.process);
    await ferret?.stop();
    await deleteServiceQueues(broker, log);
  }
}

function markdown(data: {
  machine: MachineInfo;
  quick: boolean;
  stepSeconds: number;
  broker: string;
  store: string;
  idleCores: Record<ProcessName, number>;
  results: WorkloadResult[];
}): string {
  const { machine } = data;
  const cpu = (s: StepResult) => PROCESSES.map((p) => (Number.isFinite(s.cpuUsPerCall[p]) ? s.cpuUsPerCall[p] : "–")).join(" / ");
  const errors = (s: StepResult) => Object.entries(s.errors).map(([c, n]) => `${n} ${c}`).join(", ") || "0";
  const bestRows = data.results
    .map((w) => {
      const b = w.best;
      if (!b) {
        const lowest = w.steps.reduce<StepResult | undefined>((min, st) => (min === undefined || st.rate < min.rate ? st : min), undefined);
        return `| ${w.workload} | none passed (lowest step ${lowest?.rate}/s: p99 ${lowest?.p99Ms} ms) | | | | | | |`;
      }
      return `| ${w.workload} | **${b.answeredPerSec.toFixed(0)}** (${b.rate}/s sent) | ${b.p50Ms} | ${b.p90Ms} | ${b.p99Ms} | ${cpu(b)} | ${errors(b)} | ${b.outbox.p50Ms} / ${b.outbox.p99Ms} (missing ${b.outbox.missing}) |`;
    })
    .join("\n");
  const stepRows = data.results
    .flatMap((w) =>
      w.steps.map(
        (s) =>
          `| ${w.workload} | ${s.rate} | ${s.answeredPerSec.toFixed(0)} | ${s.p50Ms} | ${s.p99Ms} | ${errors(s)} | ${cpu(s)} | ${PROCESSES.map((p) => s.coreShare[p]).join(" / ")} | ${s.outbox.p99Ms} | ${s.pass ? "pass" : "fail"} |`,
      ),
    )
    .join("\n");
  return `## (c) CreateBooking end to end

${machine.date} · ${machine.cores} cores · ${machine.cpuModel} · Node ${machine.node}${data.quick ? " · **--quick**" : ""} ·
load average (1 min) ${machine.loadBefore} before, ${machine.loadAfter} after · \`bench/booking.ts\`

Connect JSON over HTTP/1.1 (as a browser) → gateway → BookingService → (EventService lookup) → ${data.store} →
outbox → RabbitMQ (${data.broker}, publisher confirms) → a queue bound by the benchmark. Each service is its own
process from \`dist/\`. Open loop, one seat per booking, steps of ${data.stepSeconds} s at rising rates; a step passes with
p99 ≤ ${P99_TARGET_MS} ms, no failed call and answers keeping pace; after the first failure the rate is bisected.
CPU = user + system time per confirmed booking from \`/proc/<pid>/stat\` (gateway / bookings / events / FerretDB).
Outbox = from CreateBooking's response to the BookingConfirmed reaching the bound queue.

| workload | highest passing rate (bookings/s) | p50 ms | p90 ms | p99 ms | CPU µs/call gw / bk / ev / db | errors | outbox p50 / p99 ms |
|---|---:|---:|---:|---:|---:|---:|---:|
${bestRows}

With no bookings (idle, relay polls and health checks) the processes use ${PROCESSES.map((p) => data.idleCores[p]).join(" / ")} cores
(gateway / bookings / events / FerretDB): at low rates that fixed cost is part of the CPU per call.

Overload (one step far over capacity; load shedding answers \`Unavailable\` at once instead of queueing):

| workload | sent/s | answered OK/s | OK p50 / p99 ms | failed calls | failed p99 ms |
|---|---:|---:|---:|---|---:|
${data.results.map((w) => `| ${w.workload} | ${w.overload.rate} | ${w.overload.answeredPerSec.toFixed(0)} | ${w.overload.p50Ms} / ${w.overload.p99Ms} | ${errors(w.overload)} | ${Number.isNaN(w.overload.failedP99Ms) ? "–" : w.overload.failedP99Ms} |`).join("\n")}

${data.results.flatMap((w) => Object.entries(w.overload.errorMessages).map(([code, msg]) => `- ${w.workload}, first ${code}: ${msg}`)).join("\n")}

Every step:

| workload | sent/s | answered/s | p50 ms | p99 ms | errors | CPU µs/call gw / bk / ev / db | cores used gw / bk / ev / db | outbox p99 ms | |
|---|---:|---:|---:|---:|---|---:|---:|---:|---|
${stepRows}
`;
}

// Run directly: print the section and write it to bench/results/booking.md (and the JSON).
if (import.meta.url === `file://${process.argv[1]}`) {
  const { markdown: md, data } = await run({ quick: process.argv.includes("--quick"), profile: process.argv.includes("--profile") });
  mkdirSync(`${ROOT}bench/results`, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  writeFileSync(`${ROOT}bench/results/booking-${stamp}.json`, JSON.stringify(data, null, 2) + "\n");
  writeFileSync(`${ROOT}bench/results/booking.md`, md);
  process.stdout.write(md);
}
