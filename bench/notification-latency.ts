// Notification latency (issue 7, scenario d): from CreateBooking's response
// to the matching notification arriving at a streaming Subscribe client, at
// a steady rate of bookings.
//
//   node --import tsx bench/notification-latency.ts [--quick] [--embedded-store] [--rate N]
//
// The EventService, BookingService and NotificationService run as separate
// processes (`services/<name>/main.ts`, as `npm run start:<name>` does) on
// RabbitMQ (AMQP_URL, else the local broker's vhost "myevents-bench", made
// here with rabbitmqctl) and MongoDB-wire storage: MONGODB_URL, else a
// throwaway FerretDB (SQLite) started here; `--embedded-store` uses the
// in-memory stores instead. The client (this process) creates one event,
// subscribes to its notifications over gRPC, waits for the subscription's
// first heartbeat, then books one seat every 1/RATE s (open loop: a slow
// answer does not delay the next booking) and pairs each CreateBooking
// response with the BookingChange carrying the same booking id.
// Writes bench/results/notification-latency-<date>.json and
// bench/results/notification-latency.md.
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { BookingService } from "../gen/myevents/v1/booking_service_pb.js";
import { EventService } from "../gen/myevents/v1/event_service_pb.js";
import { NotificationService } from "../gen/myevents/v1/notification_service_pb.js";
import { startFerretDB, type FerretDB } from "../scripts/ferretdb/server.js";
import { asUser } from "../services/runtime/auth/testing.js";
import { benchBroker, deleteServiceQueues, startChild, stopChild, type BenchChild } from "./children.js";
import { ROOT, latencySummary, machineInfo, round2 } from "./lib.js";

const quick = process.argv.includes("--quick");
const embeddedStore = process.argv.includes("--embedded-store");
const rateArg = process.argv.indexOf("--rate");
const RATE = rateArg > 0 ? Number(process.argv[rateArg + 1]) : 50; // bookings per second
if (!(RATE > 0 && RATE <= 1000)) throw new Error("--rate must be a number of bookings per second in (0, 1000]");
const WARMUP_S = quick ? 2 : 5;
const MEASURE_S = quick ? 10 : 60;
const DRAIN_MS = 10_000; // how long to wait for the last notifications

function log(line: string) {
  process.stderr.write(`[notification-latency] ${line}\n`);
}

// One HS256 secret per run: the services verify, the load client signs as an admin and a user.
const BENCH_JWT_SECRET = randomBytes(32).toString("base64url");

/** A service under tsx (this script's services run from source, not dist/). */
function startService(name: "events" | "bookings" | "notifications", env: Record<string, string>): Promise<BenchChild> {
  return startChild(name, ["--import", "tsx", `services/${name}/main.ts`], { JWT_SECRET: BENCH_JWT_SECRET, ...env });
}

const broker = benchBroker();
const machine = machineInfo();
const runId = randomBytes(3).toString("hex");
let ferret: FerretDB | undefined;
const children: BenchChild[] = [];

try {
  let mongodbUrl = process.env.MONGODB_URL;
  let storeNote = mongodbUrl ? "MONGODB_URL" : "embedded in-memory stores";
  if (!mongodbUrl && !embeddedStore) {
    ferret = await startFerretDB();
    mongodbUrl = ferret.url;
    storeNote = "throwaway FerretDB 1.24 (SQLite backend) started by the benchmark";
  }
  if (embeddedStore) mongodbUrl = undefined;
  const common: Record<string, string> = { AMQP_URL: broker.url, ...(mongodbUrl ? { MONGODB_URL: mongodbUrl } : {}) };
  log(`broker: ${broker.note}; store: ${storeNote}`);

  const events = await startService("events", { ...common, EVENTS_DATABASE: `bench_events_${runId}` });
  const bookings = await startService("bookings", { ...common, BOOKINGS_DATABASE: `bench_bookings_${runId}`, EVENTS_URL: events.url });
  const notifications = await startService("notifications", { AMQP_URL: broker.url });
  children.push(events, bookings, notifications);

  const totalBookings = (WARMUP_S + MEASURE_S) * RATE;
  const eventsClient = createClient(EventService, createGrpcTransport({ baseUrl: events.url, interceptors: [asUser("bench-admin", { admin: true, secret: BENCH_JWT_SECRET })] }));
  const { location } = await eventsClient.createLocation({ location: { name: "Bench Arena", country: "DE", halls: [{ name: "Main", capacity: totalBookings + 100 }] } });
  const start = Date.now() + 86_400_000;
  const { event } = await eventsClient.createEvent({
    event: { name: "Bench night", locationId: location!.id, hall: "Main", startTime: timestampFromDate(new Date(start)), endTime: timestampFromDate(new Date(start + 7_200_000)) },
  });
  const eventId = event!.id;

  // The subscriber: arrival time of each booking's notification.
  const arrivals = new Map<string, number>();
  const seatsSeen = new Map<string, number>();
  const abort = new AbortController();
  let subscribed!: () => void;
  const ready = new Promise<void>((resolve) => (subscribed = resolve));
  const notificationsClient = createClient(NotificationService, createGrpcTransport({ baseUrl: notifications.url }));
  const reading = (async () => {
    for await (const m of notificationsClient.subscribe({ eventIds: [eventId] }, { signal: abort.signal })) {
      const now = performance.now();
      if (m.change.case === "heartbeat") subscribed();
      else if (m.change.case === "bookingChange") {
        arrivals.set(m.change.value.bookingId, now);
        seatsSeen.set(m.change.value.bookingId, m.change.value.seatsAvailable);
      }
    }
  })().catch((err: unknown) => {
    if (!abort.signal.aborted) throw err;
  });
  await ready;
  const bookingsClient = createClient(BookingService, createGrpcTransport({ baseUrl: bookings.url, interceptors: [asUser("bench-user", { secret: BENCH_JWT_SECRET })] }));

  log(`booking ${RATE}/s for ${WARMUP_S} s warm-up + ${MEASURE_S} s measured (${totalBookings} bookings)`);
  interface Sample { sentAt: number; respondedAt?: number; bookingId?: string; error?: string; measured: boolean }
  const samples: Sample[] = [];
  const inflight: Promise<void>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < totalBookings; i++) {
    const due = t0 + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const sample: Sample = { sentAt: performance.now(), measured: i >= WARMUP_S * RATE };
    samples.push(sample);
    inflight.push(
      bookingsClient.createBooking({ eventId, seats: 1, requestId: `${runId}-${i}` }, { timeoutMs: 30_000 }).then(
        (res) => {
          sample.respondedAt = performance.now();
          sample.bookingId = res.booking!.id;
        },
        (err: Error) => void (sample.error = err.message),
      ),
    );
  }
  const sendSeconds = (performance.now() - t0) / 1000;
  await Promise.all(inflight);
  const drainUntil = performance.now() + DRAIN_MS;
  while (performance.now() < drainUntil && samples.some((s) => s.bookingId && !arrivals.has(s.bookingId))) await sleep(50);
  abort.abort();
  await reading;

  const measured = samples.filter((s) => s.measured);
  const ok = measured.filter((s) => s.bookingId !== undefined);
  const latency = ok.filter((s) => arrivals.has(s.bookingId!)).map((s) => arrivals.get(s.bookingId!)! - s.respondedAt!);
  const missing = ok.filter((s) => !arrivals.has(s.bookingId!)).length;
  const errors = measured.filter((s) => s.error);
  const createBooking = ok.map((s) => s.respondedAt! - s.sentAt);
  // Whether the services kept up: bookings answered per second over the measured window.
  const answered = ok.map((s) => s.respondedAt!);
  const completedPerSec = answered.length > 1 ? Math.round(((answered.length - 1) / ((Math.max(...answered) - Math.min(...answered)) / 1000)) * 10) / 10 : 0;
  const seatsLeft = [...seatsSeen.values()];
  machine.loadAfter = round2(loadavg()[0]!);
  const result = {
    scenario: "d: notification latency",
    machine,
    setup: {
      processes: "events, bookings, notifications: one node process each (services/<name>/main.ts), LOG_LEVEL=info, stdout to /dev/null",
      broker: broker.note,
      store: storeNote,
      client: "this process: @connectrpc/connect-node gRPC transport; one Subscribe stream filtered by the event id; CreateBooking (1 seat) open loop",
      rateBookingsPerSec: RATE,
      warmupSeconds: WARMUP_S,
      measuredSeconds: MEASURE_S,
      quick,
      achievedRate: Math.round((totalBookings / sendSeconds) * 10) / 10,
    },
    completedBookingsPerSec: completedPerSec,
    notificationLatency: latencySummary(latency),
    /** Notifications that came before the CreateBooking response reached the client (latency < 0). */
    arrivedBeforeResponse: latency.filter((l) => l < 0).length,
    missingNotifications: missing,
    createBookingLatency: latencySummary(createBooking),
    bookingErrors: errors.length,
    firstErrors: errors.slice(0, 3).map((s) => s.error),
    lowestSeatsAvailableSeen: seatsLeft.length ? Math.min(...seatsLeft) : null,
    // A load average above the core count means other work shared the machine.
    note:
      machine.loadBefore > machine.cores
        ? `The machine was busy (load average ${machine.loadBefore} on ${machine.cores} cores): figures are noisy and pessimistic.`
        : `The machine was otherwise idle (load average ${machine.loadBefore} on ${machine.cores} cores).`,
  };

  const stamp = machine.date.replace(/[:.]/g, "-");
  mkdirSync(`${ROOT}bench/results`, { recursive: true });
  writeFileSync(`${ROOT}bench/results/notification-latency-${stamp}.json`, JSON.stringify(result, null, 2) + "\n");
  const n = result.notificationLatency;
  const c = result.createBookingLatency;
  const md = `# (d) Notification latency

${machine.date.slice(0, 10)} · ${machine.cores} cores · ${machine.cpuModel} · Node ${machine.node} · load average ${machine.loadBefore} at start ·
\`node --import tsx bench/notification-latency.ts ${process.argv.slice(2).join(" ")}\`

Time from CreateBooking's response (at the client) to the booking's notification arriving at a
Subscribe stream (gRPC, filtered by the event id), at a steady ${RATE} bookings/s
(achieved ${result.setup.achievedRate}/s) for ${MEASURE_S} s after ${WARMUP_S} s of warm-up. Events, bookings and
notifications each run as their own process; broker: ${broker.note}; store: ${storeNote}.

| measured | samples | p50 ms | p90 ms | p99 ms | max ms |
|---|---:|---:|---:|---:|---:|
| notification after CreateBooking response | ${n.count} | ${n.p50Ms} | ${n.p90Ms} | ${n.p99Ms} | ${n.maxMs} |
| CreateBooking (request to response), for context | ${c.count} | ${c.p50Ms} | ${c.p90Ms} | ${c.p99Ms} | ${c.maxMs} |

Bookings answered: ${completedPerSec}/s (of ${RATE}/s sent; fewer means the services fell behind and
CreateBooking latency grew by queueing). Booking errors: ${result.bookingErrors}; notifications missing after ${DRAIN_MS / 1000} s: ${missing};
notifications that arrived before the CreateBooking response: ${result.arrivedBeforeResponse} (counted as negative latency).

${result.note}

Raw data: \`bench/results/notification-latency-${stamp}.json\`.
`;
  writeFileSync(`${ROOT}bench/results/notification-latency.md`, md);
  process.stdout.write(md);
} finally {
  for (const child of children.reverse()) await stopChild(child.process);
  await ferret?.stop();
  await deleteServiceQueues(broker, log);
}
