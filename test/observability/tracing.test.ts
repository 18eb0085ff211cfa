// Trace context end to end, on RabbitMQ and FerretDB: a traceparent sent to
// the gateway reaches every service's log lines, the AMQP message
// properties and the consumer's log lines, under one trace id; an invalid
// one starts a new trace. Also the metrics these calls and messages move.
import { randomBytes } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { connect, type ChannelModel } from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BookingService } from "../../gen/myevents/v1/booking_service_pb.js";
import { EventService } from "../../gen/myevents/v1/event_service_pb.js";
import { EXCHANGE } from "../../services/messaging/port.js";
import { amqpUrl } from "../support/backing.js";
import { eventually } from "../support/eventually.js";
import { asUser } from "../../services/runtime/auth/testing.js";
import { metric, scrape, startEvents } from "./mesh.js";

const traceId = () => randomBytes(16).toString("hex");
const spanId = () => randomBytes(8).toString("hex");
const HEX32 = /^[0-9a-f]{32}$/;

let mesh: Awaited<ReturnType<typeof startEvents>>;
let edge: Awaited<ReturnType<typeof mesh.withBookings>>;
let broker: ChannelModel;
/** booking.* messages as a downstream consumer of the exchange sees them. */
const published: Array<{ routingKey: string; headers: Record<string, unknown> }> = [];
let eventId: string;

beforeAll(async () => {
  mesh = await startEvents({ persistent: true });
  // Created before the BookingService exists: it will have to ask the EventService.
  eventId = (await mesh.newEvent(50)).id;
  edge = await mesh.withBookings();
  broker = await connect(amqpUrl());
  const channel = await broker.createChannel();
  const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
  await channel.bindQueue(queue, EXCHANGE, "booking.*");
  await channel.consume(queue, (msg) => {
    if (!msg) return;
    published.push({ routingKey: msg.fields.routingKey, headers: msg.properties.headers ?? {} });
    channel.ack(msg);
  });
}, 60_000);

afterAll(async () => {
  await broker?.close();
  await mesh?.stop();
});

/** Calls through the gateway, as a browser would (Connect JSON over HTTP/1.1), as one user. */
function viaGateway(headers: Record<string, string>) {
  const transport = createConnectTransport({ baseUrl: edge.gatewayUrl, httpVersion: "1.1", interceptors: [asUser("tracy")] });
  const h = headers;
  const bookings = createClient(BookingService, transport);
  const events = createClient(EventService, transport);
  return {
    createBooking: (seats: number) => bookings.createBooking({ eventId, seats, requestId: randomBytes(8).toString("hex") }, { headers: h }),
    cancelBooking: (id: string) => bookings.cancelBooking({ id }, { headers: h }),
    getEvent: () => events.getEvent({ id: eventId }, { headers: h }),
  };
}

describe("a traceparent sent to the gateway", () => {
  const trace = traceId();
  const parent = spanId();
  let bookingId: string;

  beforeAll(async () => {
    const { booking } = await viaGateway({ traceparent: `00-${trace}-${parent}-01`, tracestate: "vendor=abc" }).createBooking(2);
    bookingId = booking!.id;
  });

  it("is in the log line of every service it passed: gateway -> bookings -> events", async () => {
    const lines = mesh.logs.withTrace(trace);
    const rpc = (service: string, method: string) => lines.find((l) => l.service === service && l.msg === "rpc" && l.method === method);
    expect(rpc("gateway", "/myevents.v1.BookingService/CreateBooking")).toMatchObject({ code: "OK" });
    expect(rpc("bookings", "/myevents.v1.BookingService/CreateBooking")).toMatchObject({ code: "OK" });
    // The BookingService had not heard of the event: it asked the EventService, in the same trace.
    expect(rpc("events", "/myevents.v1.EventService/GetEvent")).toMatchObject({ code: "OK" });
    // Each hop is its own span.
    const spans = new Set(lines.filter((l) => l.msg === "rpc").map((l) => l.span_id));
    expect(spans.size).toBe(3);
    expect(spans.has(parent)).toBe(false);
  });

  it("is in the AMQP properties of the message the booking published through the outbox", async () => {
    await eventually(() => expect(published.some((m) => m.routingKey === "booking.confirmed")).toBe(true), 10_000);
    const message = published.find((m) => m.routingKey === "booking.confirmed")!;
    expect(message.headers.traceparent).toMatch(new RegExp(`^00-${trace}-[0-9a-f]{16}-01$`));
    expect(message.headers.tracestate).toBe("vendor=abc");
  });

  it("continues in the consumer: the EventService logs the message under the same trace id", async () => {
    await eventually(() => {
      const consumed = mesh.logs.withTrace(trace).find((l) => l.service === "events" && l.msg === "message");
      expect(consumed).toMatchObject({ routing_key: "booking.confirmed", outcome: "acked", consumer: mesh.consumers.events });
    }, 10_000);
  });

  it("follows a cancellation the same way", async () => {
    const other = traceId();
    await viaGateway({ traceparent: `00-${other}-${spanId()}-01` }).cancelBooking(bookingId);
    await eventually(() => {
      expect(published.find((m) => m.routingKey === "booking.cancelled")?.headers.traceparent).toMatch(new RegExp(`^00-${other}-`));
      expect(mesh.logs.withTrace(other).find((l) => l.service === "events" && l.msg === "message")).toMatchObject({ routing_key: "booking.cancelled" });
    }, 10_000);
  });
});

describe("an invalid traceparent", () => {
  for (const [name, value] of [
    ["garbage", "not-a-trace"],
    ["an all-zero trace id", `00-${"0".repeat(32)}-${spanId()}-01`],
    ["an unknown version ff", `ff-${traceId()}-${spanId()}-01`],
    ["upper-case hex", `00-${traceId().toUpperCase()}-${spanId()}-01`],
  ]) {
    it(`(${name}) is ignored: the call succeeds in a new trace`, async () => {
      const before = mesh.logs.lines.length;
      const { event } = await viaGateway({ traceparent: value! }).getEvent();
      expect(event?.id).toBe(eventId);
      const lines = mesh.logs.lines.slice(before).filter((l) => l.msg === "rpc" && l.method === "/myevents.v1.EventService/GetEvent");
      expect(lines.map((l) => l.service).sort()).toEqual(["events", "gateway"]);
      const [gateway, events] = [lines.find((l) => l.service === "gateway")!, lines.find((l) => l.service === "events")!];
      expect(gateway.trace_id).toMatch(HEX32);
      expect(value).not.toContain(gateway.trace_id as string);
      expect(events.trace_id).toBe(gateway.trace_id);
    });
  }

  it("without any traceparent, the gateway starts the trace and the services continue it", async () => {
    const before = mesh.logs.lines.length;
    await viaGateway({}).getEvent();
    const lines = mesh.logs.lines.slice(before).filter((l) => l.msg === "rpc" && l.method === "/myevents.v1.EventService/GetEvent");
    expect(lines.map((l) => l.service).sort()).toEqual(["events", "gateway"]);
    expect(new Set(lines.map((l) => l.trace_id)).size).toBe(1);
    expect(lines[0]!.trace_id).toMatch(HEX32);
  });
});

describe("metrics after this traffic", () => {
  it("bookings: grpc_client_* for its EventService calls, bookings and seats counters, AMQP published", async () => {
    const text = await scrape(edge.bookings);
    const getEvent = { grpc_service: "myevents.v1.EventService", grpc_method: "GetEvent", grpc_type: "unary" };
    expect(metric(text, "grpc_client_started_total", getEvent)).toBeGreaterThanOrEqual(1);
    expect(metric(text, "grpc_client_handled_total", { ...getEvent, grpc_code: "OK" })).toBeGreaterThanOrEqual(1);
    expect(metric(text, "grpc_client_handling_seconds_count", getEvent)).toBeGreaterThanOrEqual(1);
    expect(metric(text, "grpc_server_handled_total", { grpc_method: "CreateBooking", grpc_code: "OK" })).toBe(1);
    expect(metric(text, "bookings_confirmed_total")).toBe(1);
    expect(metric(text, "bookings_seats_booked_total")).toBe(2);
    expect(metric(text, "bookings_cancelled_total", { reason: "user" })).toBe(1);
    expect(metric(text, "bookings_seats_released_total")).toBe(2);
    await eventually(async () => {
      const now = await scrape(edge.bookings);
      expect(metric(now, "amqp_messages_published_total", { routing_key: "booking.confirmed" })).toBe(1);
      expect(metric(now, "amqp_messages_published_total", { routing_key: "booking.cancelled" })).toBe(1);
      expect(metric(now, "outbox_pending_messages", { source: "bookings" })).toBe(0);
    });
  });

  it("events: consumed and acked the booking messages", async () => {
    await eventually(async () => {
      const text = await scrape(mesh.events);
      const labels = { consumer: mesh.consumers.events, routing_key: "booking.confirmed" };
      // At least once: a relay retry may publish a message twice (the effect applies once),
      // so count deliveries, and every delivery acked.
      const consumed = metric(text, "amqp_messages_consumed_total", labels);
      expect(consumed).toBeGreaterThanOrEqual(1);
      expect(metric(text, "amqp_messages_acked_total", labels)).toBe(consumed);
      expect(metric(text, "amqp_messages_published_total", { routing_key: "event.created" })).toBeGreaterThanOrEqual(1);
    });
  });

  it("gateway: grpc_client_* for the calls it forwarded", async () => {
    const text = await scrape(edge.gateway);
    expect(metric(text, "grpc_client_handled_total", { grpc_method: "CreateBooking", grpc_code: "OK" })).toBe(1);
    expect(metric(text, "grpc_client_handled_total", { grpc_method: "GetEvent", grpc_code: "OK" })).toBeGreaterThanOrEqual(5);
  });

  it("a message the handler cannot take is nacked, retried, then dead-lettered; a malformed one at once", async () => {
    const channel = await broker.createChannel();
    // Valid properties, a body that is not a BookingConfirmed: the handler throws on every delivery.
    channel.publish(EXCHANGE, "booking.confirmed", Buffer.from([0xff, 0xff, 0xff]), {
      messageId: `bad-${randomBytes(4).toString("hex")}`,
      type: "myevents.v1.BookingConfirmed",
      timestamp: Math.floor(Date.now() / 1000),
    });
    channel.publish(EXCHANGE, "booking.cancelled", Buffer.from([]), { type: "myevents.v1.BookingCancelled" }); // no id
    const labels = { consumer: mesh.consumers.events };
    await eventually(async () => {
      const text = await scrape(mesh.events);
      expect(metric(text, "amqp_messages_nacked_total", { ...labels, routing_key: "booking.confirmed" })).toBe(4);
      expect(metric(text, "amqp_messages_dead_lettered_total", { ...labels, routing_key: "booking.confirmed", reason: "delivery_limit" })).toBe(1);
      expect(metric(text, "amqp_messages_dead_lettered_total", { ...labels, routing_key: "booking.cancelled", reason: "malformed" })).toBe(1);
    }, 20_000);
    await channel.close();
  }, 30_000);
});
