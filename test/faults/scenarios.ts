// The faults, one scenario each, and the runner that puts a scenario under
// load, measures recovery and checks the invariants afterwards.
import { randomUUID } from "node:crypto";
import { connect } from "amqplib";
import { MongoClient } from "mongodb";
import { sleep } from "../support/eventually.js";
import { createEvents, edgeClients, type TestEvent } from "./client.js";
import { checkInvariants, verdictProblems, type Verdict } from "./invariants.js";
import { BookingLoad, DOCUMENTED, type BookingRequest } from "./load.js";
import { PrivateBroker } from "./broker.js";
import { deleteVhost, isolatedAmqpUrl, Mesh, SERVICE_NAMES, type ServiceName } from "./mesh.js";
import { NotificationSubscriber, type StreamRecord } from "./subscriber.js";
import { MessageTap } from "./tap.js";
import { Code } from "@connectrpc/connect";
import type { TcpProxy } from "../../services/messaging/tcp-proxy.js";

export interface FaultContext {
  mesh: Mesh;
  load: BookingLoad;
  events: TestEvent[];
  /** How long a fault lasts (the database outage is always `dbOutageMs`). */
  faultMs: number;
  dbOutageMs: number;
  /** The suite's own RabbitMQ node, when the suite runs on one (needed by broker-restart). */
  broker?: PrivateBroker;
}

export interface Scenario {
  name: string;
  /** What is broken, for the report. */
  fault: string;
  /**
   * The fault ends live-notification streams (it cuts the NotificationService
   * from the broker, or stops it or the edge): the open stream must end with
   * Unavailable and a new subscription must work after recovery. Otherwise
   * the stream must stay open through the fault and miss nothing.
   */
  endsStreams?: boolean;
  /** Breaks something and mends it (or lets it mend itself); resolves at the moment it is mended. */
  inject(ctx: FaultContext): Promise<void>;
  /** Extra checks after recovery; returns problems. */
  verify?(ctx: FaultContext): Promise<string[]>;
}

/** Publishes undecodable messages to the exchange; the consumers must dead-letter them and go on. */
const POISON_KEYS = ["booking.confirmed", "booking.cancelled", "event.created", "event.cancelled"];
const POISON_BODIES = [Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]), Buffer.from("\x0a\x05abc", "latin1")];

async function dlqDepths(amqpUrl: string): Promise<{ events: number; bookings: number }> {
  const conn = await connect(amqpUrl);
  try {
    const ch = await conn.createChannel();
    const events = (await ch.checkQueue("myevents.events.dlq")).messageCount;
    const bookings = (await ch.checkQueue("myevents.bookings.dlq")).messageCount;
    return { events, bookings };
  } finally {
    await conn.close();
  }
}

/** Connections through `proxy` cut and refused for `ms`, then allowed again. */
async function outage(proxy: TcpProxy, ms: number): Promise<void> {
  proxy.cut();
  await sleep(ms);
  proxy.restore();
}

const dlqBefore = new WeakMap<FaultContext, { events: number; bookings: number }>();

function restartAfterSignal(name: ServiceName, signal: "SIGTERM" | "SIGKILL"): Scenario {
  const exits = new WeakMap<FaultContext, { code: number | null; signal: string | null }>();
  return {
    name: `${signal.toLowerCase()}-${name}`,
    fault: `${signal} to the ${name} process under load, restarted ${signal === "SIGKILL" ? "1 s later" : "once it exited"}`,
    endsStreams: name === "notifications" || name === "gateway",
    async inject(ctx) {
      const proc = ctx.mesh.processes[name];
      proc.signal(signal);
      exits.set(ctx, await proc.waitExit());
      if (signal === "SIGKILL") await sleep(1_000);
      proc.start();
    },
    async verify(ctx) {
      const exit = exits.get(ctx);
      if (signal === "SIGTERM" && (exit?.code !== 0 || exit.signal !== null)) return [`${name} did not exit 0 after SIGTERM: ${JSON.stringify(exit)}`];
      return [];
    },
  };
}

export const SCENARIOS: Record<string, Scenario> = {
  "broker-cut": {
    name: "broker-cut",
    fault: "every broker connection cut (TCP proxy) and refused for the fault duration, then restored",
    endsStreams: true,
    inject: (ctx) => outage(ctx.mesh.broker, ctx.faultMs),
  },
  "broker-restart": {
    name: "broker-restart",
    fault: "the suite's own RabbitMQ node restarted (rabbitmqctl stop_app, 3 s down, start_app; durable queues and their messages survive)",
    endsStreams: true,
    async inject(ctx) {
      if (!ctx.broker) throw new Error("broker-restart needs the suite's own RabbitMQ node (runFaultSuite starts one when this scenario is chosen)");
      await ctx.broker.restart(3_000);
    },
  },
  "db-outage": {
    name: "db-outage",
    fault: "FerretDB unreachable (TCP proxy cuts and refuses connections) for the outage duration",
    inject: (ctx) => outage(ctx.mesh.db, ctx.dbOutageMs),
  },
  "sigkill-bookings": restartAfterSignal("bookings", "SIGKILL"),
  "sigterm-events": restartAfterSignal("events", "SIGTERM"),
  "sigterm-bookings": restartAfterSignal("bookings", "SIGTERM"),
  "sigterm-gateway": restartAfterSignal("gateway", "SIGTERM"),
  "sigkill-notifications": restartAfterSignal("notifications", "SIGKILL"),
  "sigterm-notifications": restartAfterSignal("notifications", "SIGTERM"),
  "stalled-consumer": {
    name: "stalled-consumer",
    fault: "the EventService process (consumer of booking.*) stopped with SIGSTOP for the fault duration, then SIGCONT",
    async inject(ctx) {
      const events = ctx.mesh.processes.events;
      events.signal("SIGSTOP");
      await sleep(ctx.faultMs);
      events.signal("SIGCONT");
    },
  },
  poison: {
    name: "poison",
    fault: `undecodable messages published on ${POISON_KEYS.join(", ")} (and one without message id) while bookings flow`,
    async inject(ctx) {
      dlqBefore.set(ctx, await dlqDepths(ctx.mesh.amqpUrl));
      const conn = await connect(ctx.mesh.amqpUrl);
      try {
        const ch = await conn.createConfirmChannel();
        for (const key of POISON_KEYS) {
          for (const body of POISON_BODIES) {
            ch.publish("myevents", key, body, { messageId: randomUUID(), type: "myevents.v1.Garbage", timestamp: Math.floor(Date.now() / 1000), persistent: true });
          }
        }
        ch.publish("myevents", "booking.confirmed", Buffer.from("no id"), { type: "myevents.v1.Garbage", timestamp: Math.floor(Date.now() / 1000) });
        await ch.waitForConfirms();
      } finally {
        await conn.close();
      }
    },
    async verify(ctx) {
      const before = dlqBefore.get(ctx)!;
      // booking.* reach the EventService's queue, event.* the BookingService's.
      const want = { events: before.events + 2 * POISON_BODIES.length + 1, bookings: before.bookings + 2 * POISON_BODIES.length };
      const deadline = Date.now() + 30_000;
      let got = await dlqDepths(ctx.mesh.amqpUrl);
      while ((got.events !== want.events || got.bookings !== want.bookings) && Date.now() < deadline) {
        await sleep(200);
        got = await dlqDepths(ctx.mesh.amqpUrl);
      }
      return got.events === want.events && got.bookings === want.bookings ? [] : [`dead-letter queues hold ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`];
    },
  },
};

export interface ScenarioFigures {
  scenario: string;
  fault: string;
  faultMs: number;
  attempted: number;
  confirmed: number;
  soldOut: number;
  cancelled: number;
  /** Requests without an answer during the fault, answered by a retry with the same request_id after recovery. */
  recoveredByRetry: number;
  lost: number;
  duplicated: number;
  oversold: number;
  /** Events whose EventService seat count lags the inventory after recovery (must be 0). */
  staleSeatCopies: number;
  /** ReservationUndone messages recovery published during the scenario (each must reach the EventService's copy). */
  reservationsUndone: number;
  /** Live notifications: what the subscriber through the edge saw (see checkNotifications). */
  notifications: NotificationFigures;
  /** From mending the fault to every process SERVING and a new booking confirmed through the edge. */
  recoverMs: number;
  /** Error codes clients saw during the scenario. */
  codes: Record<string, number>;
  problems: string[];
}

export interface SuiteOptions {
  amqpUrl: string;
  logDir: string;
  scenarios: string[];
  faultMs: number;
  dbOutageMs: number;
  /** Load before the fault and after recovery. */
  steadyMs: number;
  concurrency: number;
  /** Environment for every process. */
  env?: Record<string, string>;
  /** Run the mesh on a RabbitMQ node of the suite's own (always so when broker-restart is chosen). */
  privateBroker?: boolean;
  /**
   * How long recovery, the retries of unanswered requests, the settling of
   * the databases and the arrival of notifications may each take before
   * the scenario fails (default 60 s). On a loaded machine all of them
   * are mostly waiting for CPU.
   */
  patienceMs?: number;
  log?: (line: string) => void;
}

/** Settings every fault run uses (see README "Reliability"). */
export const FAULT_ENV = {
  // A SIGKILLed owner's PENDING booking makes retries wait until recovery
  // takes it over; 30 s (the default) would make every scenario slow.
  BOOKING_STALE_AFTER_MS: "4000",
  BOOKING_RECOVERY_INTERVAL_MS: "500",
  SHUTDOWN_TIMEOUT_MS: "4000",
  // The subscriber's stream gets a heartbeat every 2 s (15 s by default) while nothing changes.
  NOTIFICATION_HEARTBEAT_INTERVAL_MS: "2000",
};

/** The whole suite: a mesh, events, and each scenario in turn under load. Never throws for a failed invariant: figures carry problems. */
export async function runFaultSuite(opts: SuiteOptions): Promise<{ figures: ScenarioFigures[]; isolatedVhost: boolean; privateBroker: boolean }> {
  const log = opts.log ?? (() => {});
  for (const name of opts.scenarios) {
    if (!SCENARIOS[name]) throw new Error(`unknown scenario ${name}; known: ${Object.keys(SCENARIOS).join(", ")}`);
  }
  // Restarting the machine's broker would cut every other client of it: broker-restart gets a node of its own.
  const broker = opts.privateBroker || opts.scenarios.includes("broker-restart") ? await PrivateBroker.start() : undefined;
  const { url: amqpUrl, isolated } = broker ? { url: broker.url, isolated: false } : await isolatedAmqpUrl(opts.amqpUrl);
  const figures: ScenarioFigures[] = [];
  let mesh: Mesh | undefined;
  let client: MongoClient | undefined;
  let subscriber: NotificationSubscriber | undefined;
  const tap = new MessageTap(amqpUrl, ["booking.reservation_undone"]);
  try {
    mesh = await Mesh.start({ amqpUrl, logDir: opts.logDir, env: { ...FAULT_ENV, ...opts.env } });
    client = await MongoClient.connect(mesh.mongodbUrl, { serverSelectionTimeoutMS: 5_000 });
    await tap.start();
    const clients = edgeClients(mesh.edgeUrl);
    // One small event that sells out early, two large ones.
    const events = await createEvents(clients, [40, 100_000, 100_000]);
    subscriber = new NotificationSubscriber(mesh.edgeUrl, events.map((e) => e.id));
    await subscriber.start();
    const load = new BookingLoad(clients, events, { concurrency: opts.concurrency, cancelRatio: 0.2, callTimeoutMs: 2_000, retryBudgetMs: 10_000 });
    const suite: SuiteState = { mesh, client, load, events, broker, subscriber, tap };
    for (const name of opts.scenarios) {
      const scenario = SCENARIOS[name]!;
      log(`scenario ${name}: ${scenario.fault}`);
      figures.push(await runScenario(suite, scenario, opts));
      const last = figures.at(-1)!;
      log(
        `  attempted ${last.attempted}, confirmed ${last.confirmed}, lost ${last.lost}, duplicated ${last.duplicated}, oversold ${last.oversold}, stale seat copies ${last.staleSeatCopies}, ` +
          `notified ${last.notifications.checked} (stream ${last.notifications.stream}), recovered in ${last.recoverMs} ms${last.problems.length ? `; PROBLEMS: ${last.problems.join("; ")}` : ""}`,
      );
    }
  } finally {
    await subscriber?.stop();
    await client?.close();
    await mesh?.stop();
    if (!broker) await tap.delete();
    if (isolated) await deleteVhost(amqpUrl);
    await broker?.stop();
  }
  return { figures, isolatedVhost: isolated, privateBroker: broker !== undefined };
}

interface SuiteState {
  mesh: Mesh;
  client: MongoClient;
  load: BookingLoad;
  events: TestEvent[];
  broker?: PrivateBroker;
  subscriber: NotificationSubscriber;
  tap: MessageTap;
}

export interface NotificationFigures {
  /** "kept": the stream stayed open through the fault; "Unavailable → resubscribed": it ended and a new one works. */
  stream: string;
  /** Confirmations and cancellations checked against the stream (each must have arrived exactly once). */
  checked: number;
  /** Of those, not arrived (must be 0). */
  missing: number;
  /** Arrived more than once on one stream (must be 0). */
  duplicated: number;
}

/**
 * What live notifications guarantee across a fault (README "Reliability"):
 * - a fault that touches neither the broker, the NotificationService nor
 *   the edge: the stream open before it stays open, and every confirmation
 *   and cancellation of the scenario's bookings arrives on it exactly once;
 * - a fault that does (endsStreams): the open stream ends with Unavailable,
 *   a new subscription works once the mesh has recovered, and every change
 *   of a booking requested after that subscription was registered arrives
 *   on it exactly once.
 */
async function checkNotifications(
  suite: SuiteState,
  scenario: Scenario,
  openAtStart: StreamRecord,
  mine: BookingRequest[],
  patienceMs: number,
): Promise<{ figures: NotificationFigures; problems: string[] }> {
  const { subscriber } = suite;
  const problems: string[] = [];
  const now = subscriber.current();
  let stream = "kept";
  if (scenario.endsStreams) {
    if (openAtStart.endCode === undefined) problems.push("notifications: the stream open before the fault did not end");
    else if (openAtStart.endCode !== "Unavailable") problems.push(`notifications: the stream ended with ${openAtStart.endCode} (${openAtStart.endMessage}), expected Unavailable`);
    stream = `${openAtStart.endCode ?? "open"} → resubscribed`;
  } else if (now !== openAtStart) {
    problems.push(`notifications: the stream ended during a fault that does not touch it (${openAtStart.endCode}: ${openAtStart.endMessage})`);
    stream = `ended (${openAtStart.endCode})`;
  }
  if (!now || now.registeredAt === undefined || now.endCode !== undefined) {
    problems.push(`notifications: no open stream at the end (last ${now?.endCode ?? "never registered"}${now?.endMessage ? `: ${now.endMessage}` : ""})`);
    return { figures: { stream, checked: 0, missing: NaN, duplicated: NaN }, problems };
  }
  const index = subscriber.streams.indexOf(now);
  const since = now.registeredAt;
  const expected = mine
    .filter((r) => r.outcome === "confirmed" && r.startedAt >= since)
    .flatMap((r) => [{ bookingId: r.bookingId!, state: "CONFIRMED" as const }, ...(r.cancel === "done" ? [{ bookingId: r.bookingId!, state: "CANCELLED" as const }] : [])]);
  const count = (e: { bookingId: string; state: string }) => subscriber.seenFor(e.bookingId).filter((c) => c.state === e.state && c.stream === index).length;
  // The invariants have seen every message published; give the stream a moment to deliver them.
  const deadline = Date.now() + patienceMs;
  while (expected.some((e) => count(e) === 0) && Date.now() < deadline) await sleep(100);
  const missing = expected.filter((e) => count(e) === 0);
  const duplicated = expected.filter((e) => count(e) > 1);
  if (missing.length > 0) problems.push(`notifications: ${missing.length} change(s) never arrived, e.g. ${missing.slice(0, 3).map((e) => `${e.state} ${e.bookingId}`).join(", ")}`);
  if (duplicated.length > 0) problems.push(`notifications: ${duplicated.length} change(s) arrived more than once`);
  return { figures: { stream, checked: expected.length, missing: missing.length, duplicated: duplicated.length }, problems };
}

/** One scenario with the suite's load (which keeps every earlier request, so the invariants cover them all). */
async function runScenario(suite: SuiteState, scenario: Scenario, opts: SuiteOptions): Promise<ScenarioFigures> {
  const { mesh, client, load, events, broker, subscriber, tap } = suite;
  load.scenario = scenario.name;
  load.codes.clear();
  load.unexpected.length = 0;
  const ctx: FaultContext = { mesh, load, events, faultMs: opts.faultMs, dbOutageMs: opts.dbOutageMs, ...(broker ? { broker } : {}) };
  const problems: string[] = [];
  const openAtStart = subscriber.current()!;
  const undoneBefore = tap.ids.size;
  load.start();
  await sleep(opts.steadyMs);
  await scenario.inject(ctx);
  const mendedAt = Date.now();
  const patienceMs = opts.patienceMs ?? 60_000;
  const recoverMs = await timeToRecover(mesh, load, events[1]!, mendedAt, patienceMs, scenario.endsStreams ? subscriber : undefined).catch(
    (err: Error) => (problems.push(err.message), NaN),
  );
  await sleep(opts.steadyMs);
  await load.stop();
  await load.retryInterrupted(patienceMs);
  if (scenario.verify) problems.push(...(await scenario.verify(ctx)));
  if (!(await mesh.allServing())) problems.push(`not SERVING at the end: ${(await mesh.notServing()).join(", ")}`);

  let verdict: Verdict | undefined;
  try {
    verdict = await checkInvariants(mesh, client, events, load, patienceMs, () => tap.drain());
    problems.push(...verdictProblems(verdict));
  } catch (err) {
    problems.push((err as Error).message);
  }
  const undocumented = [...load.codes.keys()].filter((c) => !DOCUMENTED.has(Code[c as keyof typeof Code]));
  if (undocumented.length > 0) problems.push(`undocumented codes seen: ${load.unexpected.join(" | ")}`);
  const mine = load.requests.filter((r) => r.scenario === scenario.name);
  const unanswered = mine.filter((r) => r.outcome === "interrupted" || r.outcome === "failed" || r.cancel === "interrupted" || r.cancel === "failed");
  if (unanswered.length > 0) problems.push(`${unanswered.length} request(s) never answered: ${unanswered.slice(0, 3).map((r) => r.error ?? r.requestId).join(" | ")}`);
  const notified = await checkNotifications(suite, scenario, openAtStart, mine, patienceMs);
  problems.push(...notified.problems);

  return {
    scenario: scenario.name,
    fault: scenario.fault,
    faultMs: scenario.name === "db-outage" ? opts.dbOutageMs : opts.faultMs,
    attempted: mine.length,
    confirmed: mine.filter((r) => r.outcome === "confirmed").length,
    soldOut: mine.filter((r) => r.outcome === "rejected").length,
    cancelled: mine.filter((r) => r.cancel === "done").length,
    recoveredByRetry: mine.filter((r) => r.recoveredByRetry).length,
    lost: verdict?.lost.length ?? NaN,
    duplicated: verdict?.duplicated ?? NaN,
    oversold: verdict?.oversoldSeats ?? NaN,
    staleSeatCopies: verdict?.staleCopies.length ?? NaN,
    reservationsUndone: tap.ids.size - undoneBefore,
    notifications: notified.figures,
    recoverMs,
    codes: Object.fromEntries(load.codes),
    problems,
  };
}

/**
 * From the moment the fault is mended until every process is SERVING by
 * itself, a new booking through the edge is confirmed (a probe, counted
 * with the load) and, after a fault that ended the notification stream,
 * the subscriber's new stream is registered.
 */
async function timeToRecover(mesh: Mesh, load: BookingLoad, event: TestEvent, since: number, timeoutMs: number, resubscribed?: NotificationSubscriber): Promise<number> {
  const deadline = since + timeoutMs;
  let booked = false;
  while (Date.now() < deadline) {
    if (!(await mesh.allServing())) {
      await sleep(100);
      continue;
    }
    if (!booked) booked = (await load.book(event, 1, 1_000)).outcome === "confirmed";
    const stream = resubscribed?.current();
    if (booked && (!resubscribed || (stream?.registeredAt !== undefined && stream.registeredAt >= since && stream.endCode === undefined))) return Date.now() - since;
    if (booked) await sleep(50);
  }
  const stream = resubscribed?.current();
  throw new Error(
    `not recovered ${timeoutMs} ms after the fault was mended: not SERVING: ${(await mesh.notServing()).join(", ") || "none"}; ` +
      `probe booking ${booked ? "confirmed" : "not confirmed"}${resubscribed ? `; notification stream ${stream?.registeredAt !== undefined && stream.endCode === undefined ? "open" : `not registered (last: ${stream?.endCode ?? "pending"})`}` : ""}`,
  );
}

export { SERVICE_NAMES };
