// NotificationService as it runs: real EventService, BookingService and
// NotificationService(s) on free ports, over RabbitMQ (the test vhost) and
// over the in-process bus; clients on real sockets.
import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate, timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { connect } from "amqplib";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/health/v1/health_pb.js";
import { BookingState } from "../../gen/myevents/v1/booking_pb.js";
import { BookingService } from "../../gen/myevents/v1/booking_service_pb.js";
import { BookingConfirmedSchema } from "../../gen/myevents/v1/domain_events_pb.js";
import { EventState } from "../../gen/myevents/v1/event_pb.js";
import { EventService } from "../../gen/myevents/v1/event_service_pb.js";
import { NotificationService, type SubscribeResponse } from "../../gen/myevents/v1/notification_service_pb.js";
import { amqpUrl } from "../../test/support/backing.js";
import { asCaller } from "../../test/support/callers.js";
import { eventually } from "../../test/support/eventually.js";
import { AmqpMessageBus, deadLetterQueueName, queueName } from "../messaging/amqp.js";
import { MemoryMessageBus } from "../messaging/memory.js";
import type { MessageBus, OutgoingMessage } from "../messaging/port.js";
import { startTcpProxy, type TcpProxy } from "../messaging/tcp-proxy.js";
import { readBookingsConfig, startBookingsService } from "../bookings/app.js";
import { readEventsConfig, startEventsService } from "../events/app.js";
import { EnvReader } from "../runtime/config.js";
import { newId } from "../runtime/ids.js";
import { createLogger } from "../runtime/logger.js";
import type { RunningService } from "../runtime/server.js";
import { readNotificationsConfig, startNotificationsService } from "./app.js";

const AMQP_URL = amqpUrl();
const HOUR = 3_600_000;
const silent = createLogger("debug", {}, process.env.TEST_LOGS ? (l) => process.stderr.write(l) : () => {});

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

interface MeshOptions {
  broker: boolean;
  /** NotificationService instances (default 1). */
  instances?: number;
  /** Extra environment of the NotificationService(s). */
  env?: Record<string, string>;
  /** The NotificationService's broker connection goes through this proxy. */
  proxy?: TcpProxy;
}

/** Events, bookings and notifications on free ports; over RabbitMQ or one in-process bus. */
async function startMesh(opts: MeshOptions) {
  const suffix = `.test-${randomBytes(4).toString("hex")}`;
  const bus = opts.broker ? undefined : new MemoryMessageBus();
  const common = { HOST: "127.0.0.1", PORT: "0", ADMIN_PORT: "0", HEALTH_CHECK_INTERVAL_MS: "100", ...(opts.broker ? { AMQP_URL } : {}) };
  const started = { suffix };
  const events = await startEventsService(readEventsConfig(new EnvReader(common)), { logger: silent, bus, queueSuffix: suffix });
  const bookings = await startBookingsService(
    readBookingsConfig(new EnvReader({ ...common, EVENTS_URL: `http://127.0.0.1:${events.port}`, BOOKING_STALE_AFTER_MS: "20000" })),
    { logger: silent, bus, queueSuffix: suffix },
  );
  let notificationsUrl = AMQP_URL;
  if (opts.proxy) {
    const via = new URL(AMQP_URL);
    via.hostname = "127.0.0.1";
    via.port = String(opts.proxy.port);
    notificationsUrl = via.toString();
  }
  const notifications: RunningService[] = [];
  for (let i = 0; i < (opts.instances ?? 1); i++) {
    const env = new EnvReader({ ...common, ...(opts.broker ? { AMQP_URL: notificationsUrl } : {}), SHUTDOWN_TIMEOUT_MS: "60000", ...opts.env });
    const config = readNotificationsConfig(env);
    env.done();
    notifications.push(await startNotificationsService(config, { logger: silent, bus, queueSuffix: suffix }));
  }
  // Raw domain events straight onto the exchange, as a publisher would send them.
  const publisher: MessageBus = bus ?? new AmqpMessageBus(AMQP_URL, silent);
  await publisher.whenConnected?.(5000);
  const admin = createGrpcTransport({ baseUrl: `http://127.0.0.1:${events.port}`, interceptors: [asCaller("admin", { admin: true })] });
  const mesh = {
    ...started,
    events,
    bookings,
    notifications,
    publisher,
    eventsClient: createClient(EventService, admin),
    bookingsAs: (user: string) =>
      createClient(BookingService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${bookings.port}`, interceptors: [asCaller(user)] })),
    url: (i = 0) => `http://127.0.0.1:${notifications[i]!.port}`,
    async stop() {
      for (const n of notifications) await n.shutdown();
      await bookings.shutdown();
      await events.shutdown();
      if (!bus) await publisher.close();
      if (opts.broker) {
        const connection = await connect(AMQP_URL);
        const channel = await connection.createChannel();
        for (const name of [`events${suffix}`, `bookings${suffix}`]) {
          await channel.deleteQueue(queueName(name));
          await channel.deleteQueue(deadLetterQueueName(name));
        }
        await connection.close();
      }
    },
  };
  cleanups.push(() => mesh.stop());
  return mesh;
}
type Mesh = Awaited<ReturnType<typeof startMesh>>;

async function newEvent(mesh: Mesh, capacity: number) {
  const { location } = await mesh.eventsClient.createLocation({ location: { name: "Arena", country: "DE", halls: [{ name: "Main", capacity }] } });
  const start = Date.now() + 24 * HOUR;
  const { event } = await mesh.eventsClient.createEvent({
    event: { name: "Show", locationId: location!.id, hall: "Main", startTime: timestampFromDate(new Date(start)), endTime: timestampFromDate(new Date(start + 2 * HOUR)) },
  });
  return event!;
}

/** A BookingConfirmed for `eventId`, as the BookingService would publish it. */
function bookingConfirmed(eventId: string, seatsAvailable: number): OutgoingMessage {
  const id = newId();
  const body = toBinary(
    BookingConfirmedSchema,
    create(BookingConfirmedSchema, {
      id,
      occurredAt: timestampNow(),
      booking: { id: newId(), eventId, userId: "u", seats: 1, state: BookingState.CONFIRMED },
      seatsAvailable,
      inventoryVersion: 1n,
    }),
  );
  return { routingKey: "booking.confirmed", messageId: id, type: BookingConfirmedSchema.typeName, body, timestamp: new Date() };
}

/** Reads a Subscribe stream in the background. */
function reader(transport: Transport, request: { eventIds?: string[] } = {}) {
  const abort = new AbortController();
  cleanups.push(async () => abort.abort());
  const got: SubscribeResponse[] = [];
  const state = { error: undefined as ConnectError | undefined, ended: false };
  const done = (async () => {
    try {
      for await (const m of createClient(NotificationService, transport).subscribe(request, { signal: abort.signal })) got.push(m);
    } catch (err) {
      state.error = ConnectError.from(err);
    } finally {
      state.ended = true;
    }
  })();
  return {
    got,
    state,
    done,
    abort: () => abort.abort(),
    changes: () => got.filter((m) => m.change.case !== "heartbeat"),
    /** Resolves once the first message (the heartbeat sent on subscribing) has arrived. */
    subscribed: () => eventually(() => expect(got.length).toBeGreaterThan(0)),
  };
}

const grpc = (url: string) => createGrpcTransport({ baseUrl: url });
const connectJson = (url: string) => createConnectTransport({ baseUrl: url, httpVersion: "1.1" });

/** The change of a notification as a plain object, for comparisons. */
function changeOf(m: SubscribeResponse) {
  if (m.change.case === "eventChange") {
    const { eventId, seatsAvailable, state } = m.change.value;
    return { kind: "event", eventId, seatsAvailable, state };
  }
  if (m.change.case === "bookingChange") {
    const { eventId, bookingId, state, seats, seatsAvailable } = m.change.value;
    return { kind: "booking", eventId, bookingId, state, seats, seatsAvailable };
  }
  return { kind: m.change.case };
}

async function metricsText(service: RunningService) {
  return (await fetch(`http://127.0.0.1:${service.adminPort}/metrics`)).text();
}
const metricValue = (text: string, name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text)?.[1] ?? NaN);

for (const mode of ["RabbitMQ", "in-process bus"] as const) {
  const broker = mode === "RabbitMQ";
  describe(`NotificationService over ${mode}`, () => {
    it("end to end: event and booking changes with seats_available reach every subscriber, filtered by event id", async () => {
      const mesh = await startMesh({ broker });
      const all = reader(grpc(mesh.url()));
      await all.subscribed();
      const first = await newEvent(mesh, 10);
      const only = reader(connectJson(mesh.url()), { eventIds: [first.id] });
      await only.subscribed();
      const second = await newEvent(mesh, 5);

      const alice = mesh.bookingsAs("alice");
      const { booking } = await alice.createBooking({ eventId: first.id, seats: 2, requestId: newId() });
      const { booking: other } = await alice.createBooking({ eventId: second.id, seats: 1, requestId: newId() });
      await alice.cancelBooking({ id: booking!.id });
      await mesh.eventsClient.cancelEvent({ id: second.id, reason: "storm" });

      const confirmedFirst = { kind: "booking", eventId: first.id, bookingId: booking!.id, state: BookingState.CONFIRMED, seats: 2, seatsAvailable: 8 };
      const cancelledFirst = { ...confirmedFirst, state: BookingState.CANCELLED, seatsAvailable: 10 };
      const expectedAll = [
        { kind: "event", eventId: first.id, seatsAvailable: 10, state: EventState.SCHEDULED },
        { kind: "event", eventId: second.id, seatsAvailable: 5, state: EventState.SCHEDULED },
        confirmedFirst,
        { kind: "booking", eventId: second.id, bookingId: other!.id, state: BookingState.CONFIRMED, seats: 1, seatsAvailable: 4 },
        cancelledFirst,
        { kind: "event", eventId: second.id, seatsAvailable: 0, state: EventState.CANCELLED },
        // The event's cancellation cancels its bookings, and each says so (as the
        // BookingService reports it: a closed inventory takes no seats back).
        { kind: "booking", eventId: second.id, bookingId: other!.id, state: BookingState.CANCELLED, seats: 1, seatsAvailable: 4 },
      ];
      await eventually(() => expect(all.changes().map(changeOf)).toEqual(expect.arrayContaining(expectedAll)));
      expect(all.changes()).toHaveLength(expectedAll.length);
      // Different publishers (two outboxes) may interleave; one booking's own changes stay in order.
      const firstBooking = all.changes().map(changeOf).filter((c) => "bookingId" in c && c.bookingId === booking!.id);
      expect(firstBooking).toEqual([confirmedFirst, cancelledFirst]);
      await eventually(() => expect(only.changes().map(changeOf)).toEqual([confirmedFirst, cancelledFirst]));

      for (const m of all.changes()) {
        expect(m.messageId).toMatch(/^[0-9a-f-]{36}$/);
        expect(m.occurredAt).toBeDefined();
      }
      expect(new Set(all.changes().map((m) => m.messageId)).size).toBe(expectedAll.length);
      // The filtered stream saw the very same notifications (same source message ids).
      expect(only.changes().map((m) => m.messageId)).toEqual(all.changes().filter((m) => m.change.case === "bookingChange" && m.change.value.eventId === first.id).map((m) => m.messageId));

      const metrics = await metricsText(mesh.notifications[0]!);
      expect(metricValue(metrics, "notification_streams_open")).toBe(2);
      expect(metrics).toMatch(/^notifications_delivered_total\{change="bookingChange",service="notifications"\} 6$/m);
      expect(metrics).toMatch(/^notifications_received_total\{routing_key="booking.confirmed",service="notifications"\} 2$/m);
    });

    it("sends a heartbeat first and then after every quiet interval", async () => {
      const mesh = await startMesh({ broker, env: { NOTIFICATION_HEARTBEAT_INTERVAL_MS: "100" } });
      const stream = reader(connectJson(mesh.url()));
      await eventually(() => expect(stream.got.length).toBeGreaterThanOrEqual(4));
      for (const m of stream.got) {
        expect(m.change.case).toBe("heartbeat");
        expect(m.messageId).toBe("");
        expect(m.occurredAt).toBeDefined();
      }
      // A notification in between: the stream goes on, heartbeats too.
      await mesh.publisher.publish([bookingConfirmed("e-hb", 3)]);
      await eventually(() => expect(stream.changes()).toHaveLength(1));
      const after = stream.got.length;
      await eventually(() => expect(stream.got.length).toBeGreaterThan(after + 1));
      expect(stream.got.slice(after).every((m) => m.change.case === "heartbeat")).toBe(true);
    });

    it("ends a slow subscriber's stream with ResourceExhausted while a fast one gets everything", async () => {
      const mesh = await startMesh({ broker, env: { NOTIFICATION_BUFFER_SIZE: "64" } });
      // Separate connections: HTTP/2 flow control of one cannot stall the other.
      const slow = createClient(NotificationService, grpc(mesh.url())).subscribe({}, {})[Symbol.asyncIterator]();
      cleanups.push(async () => void (await slow.return?.()));
      expect((await slow.next()).value?.change.case).toBe("heartbeat"); // subscribed; now it stops reading
      const fast = reader(grpc(mesh.url()));
      await fast.subscribed();

      const batch = Array.from({ length: 4000 }, (_, i) => bookingConfirmed("e-flood", i));
      // In rounds the fast reader keeps up with (each smaller than its buffer).
      for (let i = 0; i < batch.length; i += 50) {
        await mesh.publisher.publish(batch.slice(i, i + 50));
        await eventually(() => expect(fast.changes().length).toBe(Math.min(i + 50, batch.length)));
      }
      expect(fast.changes().map((m) => m.messageId)).toEqual(batch.map((m) => m.messageId));

      // The slow one catches up on what was already in flight, then learns it was cut off.
      let read = 0;
      const error = await (async () => {
        try {
          for (let r = await slow.next(); !r.done; r = await slow.next()) read++;
        } catch (err) {
          return ConnectError.from(err);
        }
        return undefined;
      })();
      expect(error?.code).toBe(Code.ResourceExhausted);
      expect(error?.rawMessage).toMatch(/too slow/);
      expect(read).toBeLessThan(batch.length);

      const metrics = await metricsText(mesh.notifications[0]!);
      // What it had waiting when the buffer overflowed (64) and the one that overflowed it;
      // later notifications never went to it: it was no longer subscribed.
      expect(metricValue(metrics, "notifications_dropped_total")).toBe(65);
      expect(metricValue(metrics, "notification_streams_open")).toBe(1);
      // The fast one is still served.
      await mesh.publisher.publish([bookingConfirmed("e-flood", -1)]);
      await eventually(() => expect(fast.changes()).toHaveLength(batch.length + 1));
    }, 60_000);

    it("delivers every notification to every instance", async () => {
      const mesh = await startMesh({ broker, instances: 2 });
      const [a, b] = [reader(grpc(mesh.url(0))), reader(connectJson(mesh.url(1)))];
      await Promise.all([a.subscribed(), b.subscribed()]);
      const event = await newEvent(mesh, 4);
      const { booking } = await mesh.bookingsAs("bob").createBooking({ eventId: event.id, seats: 3, requestId: newId() });
      await eventually(() => {
        for (const s of [a, b]) expect(s.changes().map(changeOf)).toContainEqual(expect.objectContaining({ bookingId: booking!.id, seatsAvailable: 1 }));
      });
      expect(b.changes().map((m) => m.messageId)).toEqual(a.changes().map((m) => m.messageId));
      expect(a.changes()).toHaveLength(2); // EventCreated, BookingConfirmed
    });

    it("ends open streams with Unavailable at shutdown instead of holding the drain", async () => {
      const mesh = await startMesh({ broker });
      const streams = [reader(grpc(mesh.url())), reader(connectJson(mesh.url()))];
      await Promise.all(streams.map((s) => s.subscribed()));
      // SHUTDOWN_TIMEOUT_MS is 60 s here: a stream that held the drain would time this test out.
      await mesh.notifications[0]!.shutdown();
      await Promise.all(streams.map((s) => s.done));
      for (const s of streams) {
        expect(s.state.error?.code).toBe(Code.Unavailable);
        expect(s.state.error?.rawMessage).toMatch(/shutting down/);
      }
    });

    it("refuses bad filters with InvalidArgument and field violations; reports health", async () => {
      const mesh = await startMesh({ broker });
      const client = createClient(NotificationService, grpc(mesh.url()));
      const fail = async (eventIds: string[]) => {
        try {
          for await (const _ of client.subscribe({ eventIds })) break;
        } catch (err) {
          return ConnectError.from(err);
        }
        throw new Error("expected Subscribe to fail");
      };
      const empty = await fail(["ok", ""]);
      expect(empty.code).toBe(Code.InvalidArgument);
      expect(empty.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field)).toEqual(["event_ids[1]"]);
      expect((await fail(Array.from({ length: 101 }, (_, i) => `e${i}`))).code).toBe(Code.InvalidArgument);
      expect((await fail(["x".repeat(129)])).code).toBe(Code.InvalidArgument);

      const health = createClient(Health, grpc(mesh.url()));
      expect((await health.check({ service: "myevents.v1.NotificationService" })).status).toBe(ServingStatus.SERVING);
      expect((await fetch(`http://127.0.0.1:${mesh.notifications[0]!.adminPort}/readyz`)).status).toBe(200);
    });
  });
}

describe("NotificationService and the broker connection (RabbitMQ)", () => {
  it("ends streams with Unavailable when the broker connection drops, is not ready meanwhile, and serves again after reconnecting", async () => {
    const target = new URL(AMQP_URL);
    const proxy = await startTcpProxy(target.hostname, Number(target.port || 5672));
    cleanups.push(() => proxy.close());
    const mesh = await startMesh({ broker: true, proxy });
    const service = mesh.notifications[0]!;
    const readyz = async () => (await fetch(`http://127.0.0.1:${service.adminPort}/readyz`)).status;
    const stream = reader(grpc(mesh.url()));
    await stream.subscribed();
    await mesh.publisher.publish([bookingConfirmed("e-reconnect", 7)]);
    await eventually(() => expect(stream.changes()).toHaveLength(1));

    proxy.cut();
    await stream.done;
    expect(stream.state.error?.code).toBe(Code.Unavailable);
    expect(stream.state.error?.rawMessage).toMatch(/may have been missed/);
    await eventually(async () => expect(await readyz()).toBe(503));
    const refused = reader(grpc(mesh.url()));
    await refused.done;
    expect(refused.state.error?.code).toBe(Code.Unavailable);

    proxy.restore();
    await eventually(async () => expect(await readyz()).toBe(200), 10_000);
    const again = reader(grpc(mesh.url()), { eventIds: ["e-reconnect"] });
    await again.subscribed();
    const after = bookingConfirmed("e-reconnect", 6);
    await mesh.publisher.publish([after]);
    await eventually(() => expect(again.changes().map((m) => m.messageId)).toEqual([after.messageId]));
  }, 30_000);
});
