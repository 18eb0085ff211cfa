// BookingService end to end: the EventService and the BookingService as
// they run, with FerretDB and RabbitMQ, called over gRPC; plus the same
// behaviour on the embedded defaults.
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { connect, type Channel, type ChannelModel } from "amqplib";
import { MongoClient } from "mongodb";
import { BookingState } from "../../gen/myevents/v1/booking_pb.js";
import { BookingService } from "../../gen/myevents/v1/booking_service_pb.js";
import { BookingConfirmedSchema, EventCreatedSchema } from "../../gen/myevents/v1/domain_events_pb.js";
import { EventService } from "../../gen/myevents/v1/event_service_pb.js";
import { deadLetterQueueName, queueName } from "../messaging/amqp.js";
import { MemoryMessageBus } from "../messaging/memory.js";
import { EXCHANGE, type MessageBus } from "../messaging/port.js";
import { startTcpProxy } from "../messaging/tcp-proxy.js";
import { EnvReader } from "../runtime/config.js";
import { newId } from "../runtime/ids.js";
import { createLogger } from "../runtime/logger.js";
import { readEventsConfig, startEventsService } from "../events/app.js";
import { amqpUrl, mongodbUrl, uniqueDatabaseName } from "../../test/support/backing.js";
import { eventually, sleep } from "../../test/support/eventually.js";
import { asAdmin, authHeader, TEST_AUTH_ENV } from "../runtime/auth/testing.js";
import { newEvent as createEvent } from "../../test/support/events.js";
import { readBookingsConfig, startBookingsService } from "./app.js";

const AMQP_URL = amqpUrl();
const silent = createLogger("error", {}, process.env.TEST_LOGS ? (l) => process.stderr.write(l) : () => {});

interface MeshOptions {
  /** Use FerretDB and this AMQP URL; unset: embedded defaults (memory stores, one in-process bus). */
  amqpUrl?: string;
  /** Reuse databases (a restart); default: fresh ones. */
  databases?: { events: string; bookings: string };
  /** A bus for the bookings service only (e.g. one that cannot publish). */
  bookingsBus?: MessageBus;
  suffix?: string;
  /** Extra environment for the BookingService (e.g. its load-shedding bounds). */
  bookingsEnv?: Record<string, string>;
}

/** Both services on free ports, isolated from other tests (own databases, own queue names). */
async function startMesh(opts: MeshOptions = {}) {
  const suffix = opts.suffix ?? `.test-${randomBytes(4).toString("hex")}`;
  const databases = opts.databases ?? { events: uniqueDatabaseName("events"), bookings: uniqueDatabaseName("bookings") };
  const persistent = opts.amqpUrl !== undefined;
  const memoryBus = persistent ? undefined : new MemoryMessageBus();
  const common = {
    HOST: "127.0.0.1",
    PORT: "0",
    ADMIN_PORT: "0",
    HEALTH_CHECK_INTERVAL_MS: "200",
    ...TEST_AUTH_ENV,
    ...(persistent ? { MONGODB_URL: mongodbUrl(), AMQP_URL: opts.amqpUrl! } : {}),
  };
  const eventsEnv = new EnvReader({ ...common, EVENTS_DATABASE: databases.events });
  const events = await startEventsService(readEventsConfig(eventsEnv), { logger: silent, bus: memoryBus, queueSuffix: suffix });
  const bookingsEnv = new EnvReader({
    ...common,
    BOOKINGS_DATABASE: databases.bookings,
    EVENTS_URL: `http://127.0.0.1:${events.port}`,
    // Long enough that no operation under test load counts as abandoned.
    BOOKING_STALE_AFTER_MS: "20000",
    BOOKING_RECOVERY_INTERVAL_MS: "250",
    // These tests burst far past the load-shedding bound on purpose, to check
    // correctness under contention (load-shedding.test.ts checks the shedding).
    BOOKING_MAX_PER_EVENT: "1000",
    ...opts.bookingsEnv,
  });
  const bookings = await startBookingsService(readBookingsConfig(bookingsEnv), {
    logger: silent,
    bus: opts.bookingsBus ?? memoryBus,
    queueSuffix: suffix,
  });
  const eventsClient = createClient(EventService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${events.port}`, interceptors: [asAdmin()] }));
  // One connection for every user; each call carries its user's bearer token.
  const bookingsClient = createClient(BookingService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${bookings.port}` }));
  const as = (user: string): Client<typeof BookingService> =>
    new Proxy(bookingsClient, {
      get: (target, method: keyof typeof bookingsClient) => async (req: never, options: { headers?: Record<string, string> } = {}) =>
        (target[method] as (r: never, o: object) => unknown)(req, { ...options, headers: { ...options.headers, ...(await authHeader(user)) } }),
    });
  return {
    events,
    bookings,
    eventsClient,
    as,
    suffix,
    databases,
    async stop() {
      await bookings.shutdown();
      await events.shutdown();
    },
  };
}
type Mesh = Awaited<ReturnType<typeof startMesh>>;

function newEvent(mesh: Mesh, capacity: number) {
  return createEvent(mesh.eventsClient, capacity);
}

/** A queue of our own on the exchange, as a downstream consumer would have. */
async function watchExchange(pattern: string) {
  const connection: ChannelModel = await connect(AMQP_URL);
  const channel: Channel = await connection.createChannel();
  const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
  await channel.bindQueue(queue, EXCHANGE, pattern);
  const seen: Array<{ routingKey: string; messageId: string; type: string; contentType?: string; body: Buffer }> = [];
  await channel.consume(queue, (msg) => {
    if (!msg) return;
    seen.push({ routingKey: msg.fields.routingKey, messageId: msg.properties.messageId, type: msg.properties.type, contentType: msg.properties.contentType, body: msg.content });
    channel.ack(msg);
  });
  return { seen, channel, close: () => connection.close() };
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

/** Stops the mesh, deletes its queues and drops its databases after the test. */
function track(mesh: Mesh, persistent: boolean) {
  cleanups.push(async () => {
    await mesh.stop();
    if (!persistent) return;
    const connection = await connect(AMQP_URL);
    const channel = await connection.createChannel();
    for (const name of [`events${mesh.suffix}`, `bookings${mesh.suffix}`]) {
      await channel.deleteQueue(queueName(name));
      await channel.deleteQueue(deadLetterQueueName(name));
    }
    await connection.close();
    const client = await MongoClient.connect(mongodbUrl());
    await client.db(mesh.databases.events).dropDatabase();
    await client.db(mesh.databases.bookings).dropDatabase();
    await client.close();
  });
  return mesh;
}

const codeOf = (p: Promise<unknown>) => p.then(() => "ok" as const, (e: unknown) => ConnectError.from(e).code);

for (const mode of ["RabbitMQ + FerretDB", "embedded defaults"] as const) {
  const persistent = mode === "RabbitMQ + FerretDB";
  describe(`BookingService on ${mode}`, () => {
    it("books seats: one BookingConfirmed, fewer seats on the event, list and cancel", async () => {
      const watch = persistent ? await watchExchange("booking.#") : undefined;
      if (watch) cleanups.push(watch.close);
      const mesh = track(await startMesh({ amqpUrl: persistent ? AMQP_URL : undefined }), persistent);
      const event = await newEvent(mesh, 10);
      const alice = mesh.as("alice");

      const { booking } = await alice.createBooking({ eventId: event.id, seats: 2, requestId: newId() });
      expect(booking).toMatchObject({ eventId: event.id, userId: "alice", seats: 2, state: BookingState.CONFIRMED });

      // The EventService hears of it through the broker.
      await eventually(async () => expect((await mesh.eventsClient.getEvent({ id: event.id })).event?.seatsAvailable).toBe(8));
      if (watch) {
        await eventually(() => expect(watch.seen.filter((m) => m.routingKey === "booking.confirmed")).toHaveLength(1));
        const [confirmed] = watch.seen;
        expect(confirmed).toMatchObject({ type: "myevents.v1.BookingConfirmed", contentType: "application/protobuf" });
        const payload = fromBinary(BookingConfirmedSchema, confirmed!.body);
        expect(payload.id).toBe(confirmed!.messageId);
        expect(payload.booking?.id).toBe(booking!.id);
        expect(payload.seatsAvailable).toBe(8);
      }

      expect((await alice.listBookings({})).bookings.map((b) => b.id)).toEqual([booking!.id]);
      expect((await mesh.as("bob").listBookings({})).bookings).toEqual([]);
      expect(await codeOf(mesh.as("bob").getBooking({ id: booking!.id }))).toBe(Code.NotFound);
      expect(await codeOf(mesh.as("bob").cancelBooking({ id: booking!.id }))).toBe(Code.NotFound);

      const cancelled = await alice.cancelBooking({ id: booking!.id });
      expect(cancelled.booking?.state).toBe(BookingState.CANCELLED);
      expect((await alice.cancelBooking({ id: booking!.id })).booking?.state).toBe(BookingState.CANCELLED);
      await eventually(async () => expect((await mesh.eventsClient.getEvent({ id: event.id })).event?.seatsAvailable).toBe(10));
      if (watch) await eventually(() => expect(watch.seen.map((m) => m.routingKey)).toEqual(["booking.confirmed", "booking.cancelled"]));
    });

    it("never oversells: 200 concurrent one-seat bookings for 50 seats", async () => {
      const mesh = track(await startMesh({ amqpUrl: persistent ? AMQP_URL : undefined }), persistent);
      const event = await newEvent(mesh, 50);
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => codeOf(mesh.as(`user${i}`).createBooking({ eventId: event.id, seats: 1, requestId: newId() }))),
      );
      const tally = results.reduce<Record<string, number>>((t, r) => ({ ...t, [String(r)]: (t[String(r)] ?? 0) + 1 }), {});
      expect(tally).toEqual({ ok: 50, [String(Code.FailedPrecondition)]: 150 });
      expect(results.filter((r) => r === Code.FailedPrecondition)).toHaveLength(150);
      const soldOut = await mesh.as("late").createBooking({ eventId: event.id, seats: 1, requestId: newId() }).catch((e: unknown) => ConnectError.from(e));
      expect((soldOut as ConnectError).rawMessage).toMatch(/sold out/);
      await eventually(async () => expect((await mesh.eventsClient.getEvent({ id: event.id })).event?.seatsAvailable).toBe(0));
    }, 120_000); // 200 real bookings serialised on one event's inventory: more than 30 s on a busy 2-core box

    it("gives one booking and one seat for a request_id sent 20 times at once", async () => {
      const mesh = track(await startMesh({ amqpUrl: persistent ? AMQP_URL : undefined }), persistent);
      const event = await newEvent(mesh, 5);
      const requestId = newId();
      const results = await Promise.all(Array.from({ length: 20 }, () => mesh.as("carol").createBooking({ eventId: event.id, seats: 1, requestId })));
      expect(new Set(results.map((r) => r.booking?.id)).size).toBe(1);
      expect((await mesh.as("carol").listBookings({})).bookings).toHaveLength(1);
      await eventually(async () => expect((await mesh.eventsClient.getEvent({ id: event.id })).event?.seatsAvailable).toBe(4));
      // The same key for a different booking is refused, not silently merged.
      expect(await codeOf(mesh.as("carol").createBooking({ eventId: event.id, seats: 2, requestId }))).toBe(Code.AlreadyExists);
    });

    it("validates input and reports unknown and cancelled events", async () => {
      const mesh = track(await startMesh({ amqpUrl: persistent ? AMQP_URL : undefined }), persistent);
      const event = await newEvent(mesh, 5);
      const dave = mesh.as("dave");
      expect(await codeOf(dave.createBooking({ eventId: event.id, seats: 0, requestId: newId() }))).toBe(Code.InvalidArgument);
      expect(await codeOf(dave.createBooking({ eventId: event.id, seats: 11, requestId: newId() }))).toBe(Code.InvalidArgument);
      expect(await codeOf(dave.createBooking({ eventId: event.id, seats: 1, requestId: "" }))).toBe(Code.InvalidArgument);
      expect(await codeOf(dave.createBooking({ eventId: "no-such-event", seats: 1, requestId: newId() }))).toBe(Code.NotFound);
      expect(await codeOf(dave.createBooking({ eventId: event.id, seats: 6, requestId: newId() }))).toBe(Code.FailedPrecondition);

      const { booking } = await dave.createBooking({ eventId: event.id, seats: 1, requestId: newId() });
      await mesh.eventsClient.cancelEvent({ id: event.id, reason: "storm" });
      // EventCancelled cancels the event's bookings and stops new ones.
      await eventually(async () => expect((await dave.getBooking({ id: booking!.id })).booking?.state).toBe(BookingState.CANCELLED));
      expect(await codeOf(dave.createBooking({ eventId: event.id, seats: 1, requestId: newId() }))).toBe(Code.FailedPrecondition);
    });
  });
}

describe("BookingService load shedding over gRPC (RabbitMQ + FerretDB)", () => {
  it("answers calls beyond BOOKING_MAX_PER_EVENT with Unavailable at once, and their retries book once each", async () => {
    const mesh = track(await startMesh({ amqpUrl: AMQP_URL, bookingsEnv: { BOOKING_MAX_PER_EVENT: "2" } }), true);
    const event = await newEvent(mesh, 100);
    const requests = Array.from({ length: 30 }, (_, i) => ({ user: `user${i}`, requestId: newId() }));
    const book = (r: (typeof requests)[number]) => mesh.as(r.user).createBooking({ eventId: event.id, seats: 1, requestId: r.requestId }, { timeoutMs: 10_000 });
    const first = await Promise.all(requests.map(async (r) => ({ r, code: await codeOf(book(r)) })));
    const refused = first.filter((o) => o.code !== "ok");
    expect(new Set(refused.map((o) => o.code))).toEqual(new Set([Code.Unavailable]));
    expect(refused.length).toBeGreaterThanOrEqual(10); // 30 at once, 2 at a time
    // Retried (sequentially here) with the same request_ids, each books exactly once.
    for (const o of refused) expect((await book(o.r)).booking?.state).toBe(BookingState.CONFIRMED);
    await eventually(async () => expect((await mesh.eventsClient.getEvent({ id: event.id })).event?.seatsAvailable).toBe(70));
  });
});

describe("BookingService failures (RabbitMQ + FerretDB)", () => {
  it("delivers every BookingConfirmed of a 500-booking burst through a broker outage", async () => {
    const proxy = await startTcpProxy(new URL(AMQP_URL).hostname, Number(new URL(AMQP_URL).port || 5672));
    cleanups.push(async () => proxy.close());
    const proxied = new URL(AMQP_URL);
    proxied.port = String(proxy.port);
    const watch = await watchExchange("booking.confirmed");
    cleanups.push(watch.close);
    const mesh = track(await startMesh({ amqpUrl: proxied.toString() }), true);
    const event = await newEvent(mesh, 1000);
    await eventually(() => expect(mesh.bookings.health.isServing).toBe(true));

    const confirmed: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < 500) {
        next++;
        const { booking } = await mesh.as(`fan${next % 50}`).createBooking({ eventId: event.id, seats: 1, requestId: newId() });
        confirmed.push(booking!.id);
      }
    };
    const burst = Promise.all(Array.from({ length: 16 }, worker));
    await eventually(() => expect(confirmed.length).toBeGreaterThan(100), 60_000); // the outage must fall mid-burst
    proxy.cut();
    await eventually(() => expect(mesh.bookings.health.isServing).toBe(false), 5_000);
    await sleep(1_000);
    proxy.restore();
    await burst;
    expect(confirmed).toHaveLength(500);

    await eventually(() => expect(mesh.bookings.health.isServing && mesh.events.health.isServing).toBe(true), 15_000);
    await eventually(() => {
      const delivered = new Set(watch.seen.map((m) => fromBinary(BookingConfirmedSchema, m.body).booking!.id));
      expect([...confirmed].filter((id) => !delivered.has(id))).toEqual([]);
    }, 20_000);
    // Duplicates may be published (at least once), but the effect applies once.
    await eventually(async () => expect((await mesh.eventsClient.getEvent({ id: event.id })).event?.seatsAvailable).toBe(500), 15_000);
  }, 120_000); // 500 real bookings plus an outage: more than the default 30 s on a busy 2-core box

  it("publishes after a restart what a crashed process had written but not sent", async () => {
    const failing = new MemoryMessageBus();
    failing.publish = () => Promise.reject(new Error("broker gone"));
    const first = await startMesh({ amqpUrl: AMQP_URL, bookingsBus: failing });
    const event = await newEvent(first, 10);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await first.as("erin").createBooking({ eventId: event.id, seats: 1, requestId: newId() })).booking!.id);
    await first.stop(); // as if it died: nothing was published

    const watch = await watchExchange("booking.confirmed");
    cleanups.push(watch.close);
    const second = track(await startMesh({ amqpUrl: AMQP_URL, databases: first.databases, suffix: first.suffix }), true);
    await eventually(() => expect(watch.seen.map((m) => fromBinary(BookingConfirmedSchema, m.body).booking!.id).sort()).toEqual([...ids].sort()));
    await eventually(async () => expect((await second.eventsClient.getEvent({ id: event.id })).event?.seatsAvailable).toBe(7));
  });

  it("dead-letters a poison message after the delivery limit and keeps consuming", async () => {
    const mesh = track(await startMesh({ amqpUrl: AMQP_URL }), true);
    const connection = await connect(AMQP_URL);
    connection.on("error", () => {});
    cleanups.push(() => connection.close());
    // A failed passive check closes its channel, so each try gets a new one.
    const withChannel = async <T>(use: (ch: Channel) => Promise<T>) => {
      const ch = await connection.createChannel();
      ch.on("error", () => {});
      try {
        return await use(ch);
      } finally {
        await ch.close().catch(() => undefined);
      }
    };
    const dlq = deadLetterQueueName(`bookings${mesh.suffix}`);
    // Publish only once the consumer runs: its queue is bound by then.
    await eventually(async () => expect((await withChannel((ch) => ch.checkQueue(queueName(`bookings${mesh.suffix}`)))).consumerCount).toBe(1));
    const channel = await connection.createConfirmChannel();
    const poisonId = newId();
    channel.publish(EXCHANGE, "event.created", Buffer.from("not protobuf at all \xff\xfe"), { messageId: poisonId, type: "myevents.v1.EventCreated", timestamp: Math.floor(Date.now() / 1000), persistent: true });
    // An event the EventService never heard of, announced right after the poison.
    const eventId = newId();
    const announced = create(EventCreatedSchema, { id: newId(), occurredAt: timestampFromDate(new Date()), event: { id: eventId, name: "Ghost", capacity: 3, seatsAvailable: 3 } });
    channel.publish(EXCHANGE, "event.created", Buffer.from(toBinary(EventCreatedSchema, announced)), { messageId: announced.id, type: "myevents.v1.EventCreated", timestamp: Math.floor(Date.now() / 1000), persistent: true });
    await channel.waitForConfirms();

    const dead = await eventually(async () => {
      const got = await withChannel((ch) => ch.get(dlq, { noAck: true }));
      expect(got).not.toBe(false);
      return got as Exclude<typeof got, false>;
    }, 15_000);
    expect(dead.properties.messageId).toBe(poisonId);
    // It was tried maxDeliveries (5) times: the broker counted 4 redeliveries.
    expect(dead.properties.headers?.["x-first-death-reason"]).toBe("delivery_limit"); // retried, not malformed
    // The inventory came from the later message: booking works without the EventService knowing the event.
    const { booking } = await eventually(() => mesh.as("frank").createBooking({ eventId, seats: 3, requestId: "r1" }));
    expect(booking?.seats).toBe(3);
  });
});
