// Edge conformance: what any browser edge in front of the services must do,
// checked for every RPC of EventService and BookingService over every
// protocol the edge speaks, against a direct gRPC call to the service; and
// NotificationService.Subscribe streaming live changes through the edge.
//
// By default it runs against the Node gateway, started here in front of a
// real EventService, BookingService and NotificationService (embedded
// defaults, one in-process bus, free ports). With EDGE_URL set it checks that edge instead (Envoy,
// or a gateway started elsewhere), and then needs:
//   EDGE_URL                 the edge, e.g. http://127.0.0.1:8080
//   EVENTS_URL, BOOKINGS_URL the same services the edge routes to, called
//                            directly for comparison (defaults :50051, :50052)
//   EDGE_ALLOWED_ORIGIN      an origin its CORS policy allows (default http://localhost:5173)
//   EDGE_MAX_REQUEST_BYTES   its request size limit (default 4194304)
//   JWT_SECRET               the services' HS256 secret, to sign test tokens
// e.g. EDGE_URL=http://127.0.0.1:8080 npx vitest run gateway/conformance
import { randomBytes, randomUUID } from "node:crypto";
import http from "node:http";
import http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  create,
  createRegistry,
  fromJson,
  toBinary,
  toJson,
  type DescMessage,
  type DescService,
  type JsonObject,
  type JsonValue,
  type MessageShape,
} from "@bufbuild/protobuf";
import { AnySchema, timestampFromDate, TimestampSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type CallOptions, type Client, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { BadRequestSchema, file_google_rpc_error_details } from "../gen/google/rpc/error_details_pb.js";
import { ServerReflection } from "../gen/grpc/reflection/v1/reflection_pb.js";
import { Health } from "../gen/health/v1/health_pb.js";
import { BookingState } from "../gen/myevents/v1/booking_pb.js";
import { BookingService } from "../gen/myevents/v1/booking_service_pb.js";
import { EventSchema, EventState } from "../gen/myevents/v1/event_pb.js";
import { EventService, GetEventRequestSchema } from "../gen/myevents/v1/event_service_pb.js";
import { LocationSchema } from "../gen/myevents/v1/location_pb.js";
import { NotificationService } from "../gen/myevents/v1/notification_service_pb.js";
import * as grpcJs from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { createConnectTransport as createWebConnectTransport, createGrpcWebTransport as createWebGrpcWebTransport } from "@connectrpc/connect-web";
import { eventually } from "../test/support/eventually.js";
import { PROTO_INCLUDE_DIRS } from "../test/support/protos.js";
import { authHeader, type TestTokenOptions } from "../services/runtime/auth/testing.js";
import { failure, startServices, startTestGateway } from "./test-support.js";

const HOUR = 3_600_000;
const EDGE_URL = process.env.EDGE_URL;

interface Target {
  edge: string;
  events: string;
  bookings: string;
  allowedOrigin: string;
  maxRequestBytes: number;
  stop(): Promise<void>;
}

async function startTarget(): Promise<Target> {
  if (EDGE_URL) {
    return {
      edge: EDGE_URL.replace(/\/$/, ""),
      events: process.env.EVENTS_URL ?? "http://127.0.0.1:50051",
      bookings: process.env.BOOKINGS_URL ?? "http://127.0.0.1:50052",
      allowedOrigin: process.env.EDGE_ALLOWED_ORIGIN ?? "http://localhost:5173",
      maxRequestBytes: Number(process.env.EDGE_MAX_REQUEST_BYTES ?? 4 * 1024 * 1024),
      stop: async () => {},
    };
  }
  const services = await startServices();
  const { gateway, url } = await startTestGateway({
    EVENTS_URL: services.eventsUrl,
    BOOKINGS_URL: services.bookingsUrl,
    NOTIFICATIONS_URL: services.notificationsUrl,
    MAX_REQUEST_BYTES: "65536",
  });
  return {
    edge: url,
    events: services.eventsUrl,
    bookings: services.bookingsUrl,
    allowedOrigin: "http://localhost:5173",
    maxRequestBytes: 65536,
    async stop() {
      await gateway.shutdown();
      await services.stop();
    },
  };
}

let target: Target;
beforeAll(async () => {
  target = await startTarget();
});
afterAll(async () => {
  await target?.stop();
});

// --- Clients -----------------------------------------------------------------

type Events = Client<typeof EventService>;
type Bookings = Client<typeof BookingService>;

/** The same client with `authorization` on every call (undefined: anonymous). */
function withAuthorization<T extends object>(client: T, authorization: () => Promise<string | undefined>): T {
  return new Proxy(client, {
    get: (target, key) => async (req: unknown, options: CallOptions = {}) => {
      const value = await authorization();
      return (target[key as keyof T] as (r: unknown, o: CallOptions) => unknown)(req, {
        ...options,
        headers: { ...(options.headers as Record<string, string>), ...(value === undefined ? {} : { authorization: value }) },
      });
    },
  });
}

// Tokens for the services under test (an external edge: its JWT_SECRET).
const tokenOptions = (admin = false): TestTokenOptions => ({ admin, secret: EDGE_URL ? process.env.JWT_SECRET : undefined });
/** Calls as `user` (a signed bearer token), as an admin, anonymously, or with a raw header value. */
type Caller = { user: string } | "admin" | "anonymous" | { authorization: string };
const ADMIN: Caller = "admin";
function signedAs<T extends object>(client: T, caller: Caller): T {
  if (caller === "anonymous") return client;
  if (typeof caller === "object" && "authorization" in caller) return withAuthorization(client, async () => caller.authorization);
  const [user, admin] = caller === "admin" ? ["edge-admin", true] : [caller.user, false];
  return withAuthorization(client, async () => (await authHeader(user, tokenOptions(admin))).authorization);
}

const callerOf = (user: string | Caller): Caller => (typeof user === "string" && user !== "anonymous" ? { user } : user);

const direct = {
  events: (caller: Caller = ADMIN) => signedAs(createClient(EventService, createGrpcTransport({ baseUrl: target.events })), caller),
  bookings: (user: string | Caller) =>
    signedAs(createClient(BookingService, createGrpcTransport({ baseUrl: target.bookings })), callerOf(user)),
};

// The HTTP status a REST error must carry, from Google's mapping of codes.
const REST_STATUS: Partial<Record<Code, number[]>> = {
  [Code.InvalidArgument]: [400],
  [Code.FailedPrecondition]: [400],
  [Code.OutOfRange]: [400],
  [Code.Unauthenticated]: [401],
  [Code.PermissionDenied]: [403],
  [Code.NotFound]: [404],
  [Code.AlreadyExists]: [409],
  [Code.Aborted]: [409],
  [Code.ResourceExhausted]: [429, 413], // 413 for an oversized body
  [Code.Canceled]: [499],
  [Code.Unimplemented]: [501],
  [Code.Unavailable]: [503],
  [Code.DeadlineExceeded]: [504],
};

interface RestCall {
  method: "GET" | "POST";
  path: string;
  body?: JsonValue;
}

const enc = encodeURIComponent;
const ts = (t: MessageShape<typeof TimestampSchema> | undefined) => (t ? (toJson(TimestampSchema, t) as string) : undefined);
function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "" && v !== 0) q.append(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

// Each RPC's REST form, written out from the contracts' google.api.http
// annotations by hand: the edge's transcoder is checked, not reused.
const REST_ROUTES: Record<string, (r: any) => RestCall> = {
  createLocation: (r) => ({ method: "POST", path: "/v1/locations", body: r.location ? toJson(LocationSchema, r.location) : {} }),
  getLocation: (r) => ({ method: "GET", path: `/v1/locations/${enc(r.id)}` }),
  listLocations: (r) => ({ method: "GET", path: `/v1/locations${query({ page_size: r.pageSize, page_token: r.pageToken })}` }),
  createEvent: (r) => ({ method: "POST", path: "/v1/events", body: r.event ? toJson(EventSchema, r.event) : {} }),
  getEvent: (r) => ({ method: "GET", path: `/v1/events/${enc(r.id)}` }),
  listEvents: (r) => ({
    method: "GET",
    path: `/v1/events${query({ page_size: r.pageSize, page_token: r.pageToken, query: r.query, location_id: r.locationId, start_after: ts(r.startAfter), start_before: ts(r.startBefore) })}`,
  }),
  cancelEvent: (r) => ({ method: "POST", path: `/v1/events/${enc(r.id)}:cancel`, body: { reason: r.reason } }),
  createBooking: (r) => ({ method: "POST", path: `/v1/events/${enc(r.eventId)}/bookings`, body: { seats: r.seats, requestId: r.requestId } }),
  getBooking: (r) => ({ method: "GET", path: `/v1/bookings/${enc(r.id)}` }),
  listBookings: (r) => ({ method: "GET", path: `/v1/bookings${query({ page_size: r.pageSize, page_token: r.pageToken })}` }),
  cancelBooking: (r) => ({ method: "POST", path: `/v1/bookings/${enc(r.id)}:cancel`, body: {} }),
};

const detailRegistry = createRegistry(file_google_rpc_error_details);

/**
 * A client over the edge's REST API with the generated client's shape:
 * responses parsed with protobuf JSON, errors turned back into
 * ConnectErrors (code, message, details) after checking the HTTP status.
 */
function restClient<S extends DescService>(service: S, base: string): Client<S> {
  const client: Record<string, unknown> = {};
  for (const method of service.methods) {
    client[method.localName] = async (init: object, options: CallOptions = {}) => {
      const call = REST_ROUTES[method.localName]!(create(method.input, init as never));
      const headers = new Headers(options.headers);
      if (call.body !== undefined) headers.set("content-type", "application/json");
      const res = await fetch(base + call.path, {
        method: call.method,
        headers,
        body: call.body === undefined ? undefined : JSON.stringify(call.body),
        signal: options.signal,
      });
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
      const json = (await res.json()) as JsonObject;
      if (res.ok) return fromJson(method.output as DescMessage, json);
      return Promise.reject(restError(res.status, json));
    };
  }
  return client as Client<S>;
}

function restError(status: number, json: JsonObject): ConnectError {
  expect(json).toEqual({ code: expect.any(Number), message: expect.any(String), details: expect.any(Array) });
  const code = json.code as Code;
  expect(REST_STATUS[code] ?? [500]).toContain(status);
  const error = new ConnectError(json.message as string, code);
  for (const detail of json.details as JsonValue[]) {
    const any = fromJson(AnySchema, detail, { registry: detailRegistry });
    error.details.push({ type: any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1), value: any.value });
  }
  return error;
}

interface Protocol {
  name: string;
  /** As an admin unless told otherwise. */
  events(caller?: Caller): Events;
  bookings(user: string | Caller): Bookings;
  /** Deadline check with a raw request (REST has no deadline header of its own). */
  deadline?: (edge: string) => Promise<Code>;
}

const viaTransport = (name: string, transport: (baseUrl: string) => Transport, deadline: Protocol["deadline"]): Protocol => ({
  name,
  events: (caller = ADMIN) => signedAs(createClient(EventService, transport(target.edge)), caller),
  bookings: (user) => signedAs(createClient(BookingService, transport(target.edge)), callerOf(user)),
  deadline,
});

const PROTOCOLS: Protocol[] = [
  viaTransport("gRPC (HTTP/2)", (baseUrl) => createGrpcTransport({ baseUrl }), (edge) => grpcWithSlowBody(edge)),
  viaTransport("Connect JSON (HTTP/1.1)", (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "1.1" }), (edge) => connectWithSlowBody(edge, false)),
  viaTransport("Connect JSON, GET for reads", (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "1.1", useHttpGet: true }), undefined),
  viaTransport("Connect binary (HTTP/2)", (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true }), (edge) => connectWithSlowBody(edge, true)),
  viaTransport("gRPC-Web (HTTP/1.1)", (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }), (edge) => grpcWebWithSlowBody(edge)),
  {
    name: "REST (fetch)",
    events: (caller = ADMIN) => signedAs(restClient(EventService, target.edge), caller),
    bookings: (user) => signedAs(restClient(BookingService, target.edge), callerOf(user)),
  },
];

function sameError(viaEdge: ConnectError, viaService: ConnectError): void {
  expect({ code: Code[viaEdge.code], message: viaEdge.rawMessage }).toEqual({ code: Code[viaService.code], message: viaService.rawMessage });
  expect(viaEdge.findDetails(BadRequestSchema)).toEqual(viaService.findDetails(BadRequestSchema));
}

/** A location and an event in it, made directly. */
async function newEvent(capacity: number) {
  const events = direct.events();
  const { location } = await events.createLocation({ location: { name: "Arena", country: "DE", halls: [{ name: "Main", capacity }] } });
  const start = Date.now() + 24 * HOUR;
  const { event } = await events.createEvent({
    event: { name: "Show", locationId: location!.id, hall: "Main", startTime: timestampFromDate(new Date(start)), endTime: timestampFromDate(new Date(start + 2 * HOUR)) },
  });
  return event!;
}

// --- Deadlines ----------------------------------------------------------------
// The request's headers (with a 100 ms deadline) go out at once, its body
// only 400 ms later: the edge, or the service it passed the deadline to,
// must answer DeadlineExceeded instead of the call's real answer (NotFound).

const SLOW_BODY_MS = 400;
const getEventBinary = () => toBinary(GetEventRequestSchema, create(GetEventRequestSchema, { id: "no-such-event" }));
const envelope = (bytes: Uint8Array) => {
  const frame = Buffer.alloc(5 + bytes.length);
  frame.writeUInt32BE(bytes.length, 1); // flags 0: an uncompressed message
  frame.set(bytes, 5);
  return frame;
};

/**
 * POSTs over HTTP/1.1: headers at once, the body SLOW_BODY_MS later.
 * (node:http rather than fetch, which holds the headers back until the
 * body's first bytes.)
 */
function postWithSlowBody(url: string, headers: Record<string, string>, body: Uint8Array): Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: "POST", headers: { ...headers, "transfer-encoding": "chunked" } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.flushHeaders();
    setTimeout(() => req.end(body), SLOW_BODY_MS);
  });
}

async function connectWithSlowBody(edge: string, binary: boolean): Promise<Code> {
  const body = binary ? getEventBinary() : new TextEncoder().encode(JSON.stringify({ id: "no-such-event" }));
  const res = await postWithSlowBody(
    `${edge}/myevents.v1.EventService/GetEvent`,
    { "content-type": binary ? "application/proto" : "application/json", "connect-protocol-version": "1", "connect-timeout-ms": "100" },
    body,
  );
  const json = JSON.parse(res.body.toString("utf8")) as { code?: string };
  return codeFromConnectName(json.code);
}

async function grpcWebWithSlowBody(edge: string): Promise<Code> {
  const res = await postWithSlowBody(
    `${edge}/myevents.v1.EventService/GetEvent`,
    { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", "grpc-timeout": "100m" },
    envelope(getEventBinary()),
  );
  const fromHeader = res.headers["grpc-status"];
  if (typeof fromHeader === "string") return Number(fromHeader) as Code;
  // The status is in the trailer frame (flag 0x80) at the end of the body.
  const bytes = res.body;
  for (let at = 0; at + 5 <= bytes.length; ) {
    const length = bytes.readUInt32BE(at + 1);
    if (bytes[at]! & 0x80) {
      const status = /grpc-status:\s*(\d+)/i.exec(bytes.subarray(at + 5, at + 5 + length).toString("latin1"));
      if (status) return Number(status[1]) as Code;
    }
    at += 5 + length;
  }
  throw new Error("gRPC-Web response without grpc-status");
}

async function grpcWithSlowBody(edge: string): Promise<Code> {
  const session = http2.connect(edge);
  try {
    const stream = session.request({
      ":method": "POST",
      ":path": "/myevents.v1.EventService/GetEvent",
      "content-type": "application/grpc",
      te: "trailers",
      "grpc-timeout": "100m",
    });
    const status = new Promise<Code>((resolve, reject) => {
      let code: string | undefined;
      stream.on("response", (headers) => (code ??= headers["grpc-status"] as string | undefined));
      stream.on("trailers", (trailers) => (code ??= trailers["grpc-status"] as string | undefined));
      stream.on("error", reject);
      stream.on("close", () => (code === undefined ? reject(new Error("no grpc-status")) : resolve(Number(code) as Code)));
      stream.resume();
    });
    setTimeout(() => {
      if (!stream.closed) stream.end(envelope(getEventBinary()));
    }, SLOW_BODY_MS);
    return await status;
  } finally {
    session.close();
  }
}

function codeFromConnectName(name: string | undefined): Code {
  const found = Object.entries(Code).find(([key]) => key.replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase() === name);
  if (!found) throw new Error(`not a Connect error code: ${name}`);
  return found[1] as Code;
}

// --- The suite --------------------------------------------------------------------

describe(`edge conformance (${EDGE_URL ? `EDGE_URL=${EDGE_URL}` : "Node gateway"})`, () => {
  for (const [index, protocol] of PROTOCOLS.entries()) {
    describe(protocol.name, () => {
      const tag = `p${index}-${randomBytes(3).toString("hex")}`;

      it("answers every EventService RPC as a direct gRPC call does", async () => {
        const edge = protocol.events();
        const svc = direct.events();

        const location = { name: `Arena ${tag}`, address: "Street 1", country: "DE", halls: [{ name: "Main", capacity: 3 }, { name: "Side", capacity: 1 }] };
        const made = (await edge.createLocation({ location })).location!;
        const twin = (await svc.createLocation({ location })).location!;
        expect({ ...made, id: "" }).toEqual({ ...twin, id: "" }); // the same but for the new id
        expect(await edge.getLocation({ id: made.id })).toEqual(await svc.getLocation({ id: made.id }));
        const firstPage = await edge.listLocations({ pageSize: 1 });
        expect(firstPage).toEqual(await svc.listLocations({ pageSize: 1 }));
        expect(firstPage.nextPageToken).not.toBe("");
        expect(await edge.listLocations({ pageSize: 1, pageToken: firstPage.nextPageToken })).toEqual(
          await svc.listLocations({ pageSize: 1, pageToken: firstPage.nextPageToken }),
        );

        const start = Math.floor(Date.now() / 1000) * 1000 + 48 * HOUR;
        const event = {
          name: `Concert ${tag}`,
          locationId: made.id,
          hall: "Main",
          startTime: timestampFromDate(new Date(start)),
          endTime: timestampFromDate(new Date(start + 2 * HOUR)),
        };
        const created = (await edge.createEvent({ event })).event!;
        const createdTwin = (await svc.createEvent({ event })).event!;
        expect({ ...created, id: "" }).toEqual({ ...createdTwin, id: "" });
        expect(await edge.getEvent({ id: created.id })).toEqual(await svc.getEvent({ id: created.id }));

        const filters = {
          query: `CONCERT ${tag}`,
          locationId: made.id,
          startAfter: timestampFromDate(new Date(start - HOUR)),
          startBefore: timestampFromDate(new Date(start + HOUR)),
          pageSize: 1,
        };
        const page = await edge.listEvents(filters);
        expect(page.events).toHaveLength(1);
        expect(page).toEqual(await svc.listEvents(filters));
        const rest = await edge.listEvents({ ...filters, pageToken: page.nextPageToken });
        expect(rest.events).toHaveLength(1);
        expect(rest).toEqual(await svc.listEvents({ ...filters, pageToken: page.nextPageToken }));

        const cancelled = (await edge.cancelEvent({ id: created.id, reason: "storm" })).event!;
        expect(cancelled.state).toBe(EventState.CANCELLED);
        expect(cancelled).toEqual((await svc.getEvent({ id: created.id })).event);
        const cancelledTwin = (await svc.cancelEvent({ id: createdTwin.id, reason: "storm" })).event!;
        expect({ ...cancelled, id: "" }).toEqual({ ...cancelledTwin, id: "" });
      });

      it("answers every BookingService RPC as a direct gRPC call does, for the calling user (the token's subject)", async () => {
        const event = await newEvent(5);
        const alice = `alice-${tag}`;
        const bob = `bob-${tag}`;
        const edge = protocol.bookings(alice);
        const svc = direct.bookings(alice);

        const requestId = randomUUID();
        const booking = (await edge.createBooking({ eventId: event.id, seats: 2, requestId })).booking!;
        // The token reached the BookingService: the booking is alice's.
        expect(booking).toMatchObject({ eventId: event.id, userId: alice, seats: 2, state: BookingState.CONFIRMED });
        expect(booking).toEqual((await svc.getBooking({ id: booking.id })).booking);
        // The same request again, directly: the same booking (the edge kept request_id).
        expect((await svc.createBooking({ eventId: event.id, seats: 2, requestId })).booking).toEqual(booking);

        expect(await edge.getBooking({ id: booking.id })).toEqual(await svc.getBooking({ id: booking.id }));
        const list = await edge.listBookings({ pageSize: 10 });
        expect(list.bookings.map((b) => b.id)).toEqual([booking.id]);
        expect(list).toEqual(await svc.listBookings({ pageSize: 10 }));

        // Someone else sees none of it, through the edge as directly.
        sameError(await failure(protocol.bookings(bob).getBooking({ id: booking.id })), await failure(direct.bookings(bob).getBooking({ id: booking.id })));
        expect((await protocol.bookings(bob).listBookings({})).bookings).toEqual([]);

        const cancelled = (await edge.cancelBooking({ id: booking.id })).booking!;
        expect(cancelled.state).toBe(BookingState.CANCELLED);
        expect(cancelled).toEqual((await svc.getBooking({ id: booking.id })).booking);
        expect(await edge.cancelBooking({ id: booking.id })).toEqual(await svc.cancelBooking({ id: booking.id }));
      });

      it("passes errors on with the service's code, message and details", async () => {
        const events = protocol.events();
        // NotFound (REST: 404 with a JSON error)
        sameError(await failure(events.getEvent({ id: "no-such-event" })), await failure(direct.events().getEvent({ id: "no-such-event" })));
        sameError(await failure(events.getLocation({ id: "no-such-location" })), await failure(direct.events().getLocation({ id: "no-such-location" })));
        // InvalidArgument with field violations (REST: 400)
        const past = Date.now() - 2 * HOUR;
        const invalid = { event: { name: "", locationId: "nowhere", hall: "", startTime: timestampFromDate(new Date(past)), endTime: timestampFromDate(new Date(past - HOUR)) } };
        const viaEdge = await failure(events.createEvent(invalid));
        expect(viaEdge.code).toBe(Code.InvalidArgument);
        expect(viaEdge.findDetails(BadRequestSchema)[0]?.fieldViolations.length).toBeGreaterThan(1);
        sameError(viaEdge, await failure(direct.events().createEvent(invalid)));

        const event = await newEvent(1);
        const carol = `carol-${tag}`;
        await direct.bookings(carol).createBooking({ eventId: event.id, seats: 1, requestId: randomUUID() });
        // Sold out: FailedPrecondition (REST: 400)
        const soldOut = await failure(protocol.bookings(carol).createBooking({ eventId: event.id, seats: 1, requestId: randomUUID() }));
        expect(soldOut.code).toBe(Code.FailedPrecondition);
        sameError(soldOut, await failure(direct.bookings(carol).createBooking({ eventId: event.id, seats: 1, requestId: randomUUID() })));

        // A request_id reused for a different booking: AlreadyExists (REST: 409)
        const other = await newEvent(5);
        const requestId = randomUUID();
        await protocol.bookings(carol).createBooking({ eventId: other.id, seats: 1, requestId });
        const reused = await failure(protocol.bookings(carol).createBooking({ eventId: other.id, seats: 2, requestId }));
        expect(reused.code).toBe(Code.AlreadyExists);
        sameError(reused, await failure(direct.bookings(carol).createBooking({ eventId: other.id, seats: 2, requestId })));
        // A malformed token: Unauthenticated (REST: 401)
        const garbage = { authorization: "Bearer not.a.jwt" };
        sameError(await failure(protocol.bookings(garbage).listBookings({})), await failure(direct.bookings(garbage).listBookings({})));
      });

      it("passes authorization through: anonymous reads, Unauthenticated writes, PermissionDenied for non-admins", async () => {
        const event = await newEvent(1);
        const anonymous = protocol.events("anonymous");
        expect((await anonymous.getEvent({ id: event.id })).event?.id).toBe(event.id);
        const location = { name: `Denied ${tag}`, country: "DE", halls: [{ name: "Main", capacity: 1 }] };
        const unauthenticated = await failure(anonymous.createLocation({ location }));
        expect(Code[unauthenticated.code]).toBe(Code[Code.Unauthenticated]);
        sameError(unauthenticated, await failure(direct.events("anonymous").createLocation({ location })));
        const denied = await failure(protocol.events({ user: "mallory" }).createLocation({ location }));
        expect(Code[denied.code]).toBe(Code[Code.PermissionDenied]);
        sameError(denied, await failure(direct.events({ user: "mallory" }).createLocation({ location })));
        sameError(
          await failure(protocol.bookings("anonymous").createBooking({ eventId: event.id, seats: 1, requestId: randomUUID() })),
          await failure(direct.bookings("anonymous").createBooking({ eventId: event.id, seats: 1, requestId: randomUUID() })),
        );
      });

      it("refuses a request over the size limit with ResourceExhausted (REST: 413), and its connection stays usable", async () => {
        // Well over the limit, so that the refused rest cannot hide in socket buffers.
        const huge = { location: { name: "x".repeat(target.maxRequestBytes + 1024 * 1024), country: "DE", halls: [{ name: "Main", capacity: 1 }] } };
        for (let i = 0; i < 2; i++) {
          // A new client each round: an HTTP/2 client session holds what it
          // could not send of a refused message, and Node caps that memory
          // (maxSessionMemory, 10 MB) per session. HTTP/1.1 clients share
          // kept-alive connections across clients anyway.
          const events = protocol.events();
          expect(Code[(await failure(events.createLocation(huge, { timeoutMs: 10_000 }))).code]).toBe(Code[Code.ResourceExhausted]);
          // The next calls (on the same kept-alive connection) are answered normally.
          await expect(events.listLocations({ pageSize: 1 }, { timeoutMs: 5_000 })).resolves.toBeDefined();
          await expect(events.listLocations({ pageSize: 1 }, { timeoutMs: 5_000 })).resolves.toBeDefined();
        }
      });

      if (protocol.deadline) {
        const deadline = protocol.deadline;
        it("honours the caller's deadline: a short one yields DeadlineExceeded", async () => {
          expect(Code[await deadline(target.edge)]).toBe(Code[Code.DeadlineExceeded]);
        });
      }
    });
  }

  describe("server streaming: Subscribe delivers a booking made elsewhere", () => {
    /**
     * Opens a subscription for one new event through the edge, waits for
     * its first message (the heartbeat sent once subscribed), books two
     * seats directly at the BookingService, and expects that booking's
     * change with the seats left.
     */
    async function bookingArrives(subscribe: (eventId: string, signal: AbortSignal) => AsyncIterable<{ messageId: string; change: unknown }>) {
      const event = await newEvent(5);
      const abort = new AbortController();
      const seen: Array<{ messageId: string; change: unknown }> = [];
      const reading = (async () => {
        for await (const m of subscribe(event.id, abort.signal)) seen.push(m);
      })().catch((err: unknown) => {
        if (!abort.signal.aborted) throw err;
      });
      try {
        await eventually(() => expect(seen.length).toBeGreaterThan(0), 5_000);
        const { booking } = await direct.bookings(`streamer-${randomBytes(3).toString("hex")}`).createBooking({ eventId: event.id, seats: 2, requestId: randomUUID() });
        const expected = { eventId: event.id, bookingId: booking!.id, seats: 2, seatsAvailable: 3 };
        await eventually(() => expect(seen.map((m) => m.change)).toContainEqual(expect.objectContaining({ value: expect.objectContaining(expected) })), 5_000);
        expect(seen.find((m) => m.messageId !== "")?.messageId).toMatch(/^[0-9a-f-]{36}$/);
      } finally {
        abort.abort();
        await reading;
      }
    }

    const viaClient = (transport: Transport) => (eventId: string, signal: AbortSignal) =>
      createClient(NotificationService, transport).subscribe({ eventIds: [eventId] }, { signal });

    for (const [name, transport] of [
      ["Connect JSON (HTTP/1.1)", (baseUrl: string) => createConnectTransport({ baseUrl, httpVersion: "1.1" })],
      ["Connect binary (HTTP/2)", (baseUrl: string) => createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true })],
      ["gRPC-Web (HTTP/1.1)", (baseUrl: string) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" })],
      ["gRPC (HTTP/2)", (baseUrl: string) => createGrpcTransport({ baseUrl })],
      // What a browser runs: connect-web over fetch.
      ["connect-web, Connect JSON (fetch)", (baseUrl: string) => createWebConnectTransport({ baseUrl })],
      ["connect-web, gRPC-Web (fetch)", (baseUrl: string) => createWebGrpcWebTransport({ baseUrl })],
    ] as const) {
      it(`over ${name}`, () => bookingArrives(viaClient(transport(target.edge))));
    }

    it("over gRPC with a @grpc/grpc-js client", async () => {
      const definition = protoLoader.loadSync("myevents/v1/notification_service.proto", {
        includeDirs: PROTO_INCLUDE_DIRS,
        defaults: true,
        oneofs: true,
      });
      const pkg = grpcJs.loadPackageDefinition(definition) as unknown as { myevents: { v1: { NotificationService: grpcJs.ServiceClientConstructor } } };
      const client = new pkg.myevents.v1.NotificationService(new URL(target.edge).host, grpcJs.credentials.createInsecure());
      try {
        await bookingArrives(async function* (eventId, signal) {
          // proto-loader's defaults: camelCase field names, the oneof's case in `change`.
          const call = (client.Subscribe as (req: object) => grpcJs.ClientReadableStream<Record<string, unknown> & { messageId: string; change: string }>)({ eventIds: [eventId] });
          signal.addEventListener("abort", () => call.cancel());
          for await (const m of call) yield { messageId: m.messageId, change: { case: m.change, value: m[m.change] } };
        });
      } finally {
        client.close();
      }
    });

    it("over REST (GET /v1/notifications): newline-delimited JSON", async () => {
      await bookingArrives(async function* (eventId, signal) {
        const res = await fetch(`${target.edge}/v1/notifications?event_ids=${enc(eventId)}`, { signal });
        expect(res.status).toBe(200);
        const decoder = new TextDecoder();
        let pending = "";
        for await (const chunk of res.body!) {
          pending += decoder.decode(chunk as Uint8Array, { stream: true });
          for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
            const line = JSON.parse(pending.slice(0, nl)) as JsonObject;
            pending = pending.slice(nl + 1);
            const kind = ["bookingChange", "eventChange", "heartbeat"].find((k) => k in line)!;
            yield { messageId: (line.messageId as string) ?? "", change: { case: kind, value: line[kind] } };
          }
        }
      });
    });
  });

  describe("REST", () => {
    const json = async (res: Response) => ({ status: res.status, type: res.headers.get("content-type"), body: (await res.json()) as JsonObject });

    it("answers an unknown route with 404 and a JSON error", async () => {
      for (const [method, path] of [["GET", "/v1/nothing-here"], ["DELETE", "/v1/events/x"], ["GET", "/v1/events/a/b"]] as const) {
        const res = await json(await fetch(`${target.edge}${path}`, { method }));
        expect(res).toMatchObject({ status: 404, type: expect.stringMatching(/^application\/json/), body: { code: Code.NotFound } });
      }
    });

    it("refuses malformed input with 400 and a JSON error", async () => {
      const post = (path: string, body: string) => fetch(`${target.edge}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body });
      const cases = [
        await post("/v1/events", "{not json"),
        await post("/v1/events", JSON.stringify({ name: "x", noSuchField: 1 })),
        await post("/v1/locations", JSON.stringify({ name: "x", halls: [{ capacity: "lots" }] })),
        await fetch(`${target.edge}/v1/events?no_such_param=1`),
        await fetch(`${target.edge}/v1/events?page_size=ten`),
        await fetch(`${target.edge}/v1/events?start_after=yesterday`),
      ];
      for (const res of cases) expect(await json(res)).toMatchObject({ status: 400, body: { code: Code.InvalidArgument, message: expect.any(String) } });
    });

    it("maps query parameters to request fields, in proto or JSON spelling", async () => {
      // page_size 0 or below is refused by the service: proof the value arrived.
      const negative = await json(await fetch(`${target.edge}/v1/events?page_size=-1`));
      expect(negative).toMatchObject({ status: 400, body: { code: Code.InvalidArgument, message: expect.stringContaining("page_size") } });
      // camelCase spelling is accepted too
      expect((await fetch(`${target.edge}/v1/events?pageSize=1`)).status).toBe(200);
    });
  });

  describe("CORS", () => {
    const preflight = (origin: string, method = "POST", headers = "content-type,connect-protocol-version,connect-timeout-ms,authorization,traceparent") =>
      fetch(`${target.edge}/myevents.v1.EventService/ListEvents`, {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": method, "access-control-request-headers": headers },
      });

    it("answers a preflight from an allowed origin with what Connect, gRPC-Web and REST need", async () => {
      for (const headers of ["content-type,connect-protocol-version,connect-timeout-ms,authorization,traceparent", "content-type,x-grpc-web,x-user-agent,grpc-timeout,authorization"]) {
        const res = await preflight(target.allowedOrigin, "POST", headers);
        expect(res.status).toBeGreaterThanOrEqual(200);
        expect(res.status).toBeLessThan(300);
        expect(res.headers.get("access-control-allow-origin")).toBe(target.allowedOrigin);
        const methods = (res.headers.get("access-control-allow-methods") ?? "").toUpperCase();
        for (const m of ["GET", "POST"]) expect(methods).toContain(m);
        const allowed = (res.headers.get("access-control-allow-headers") ?? "").toLowerCase().split(/\s*,\s*/);
        for (const h of headers.split(",")) expect(allowed.includes(h) || allowed.includes("*")).toBe(true);
      }
      const rest = await fetch(`${target.edge}/v1/events`, {
        method: "OPTIONS",
        headers: { origin: target.allowedOrigin, "access-control-request-method": "GET", "access-control-request-headers": "authorization" },
      });
      expect(rest.headers.get("access-control-allow-origin")).toBe(target.allowedOrigin);
    });

    it("refuses a preflight from another origin: 403, no CORS headers", async () => {
      const res = await preflight("http://evil.example");
      expect(res.status).toBe(403);
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
    });

    it("marks actual responses for allowed origins only", async () => {
      const call = (origin: string) =>
        fetch(`${target.edge}/myevents.v1.EventService/ListLocations`, {
          method: "POST",
          headers: { origin, "content-type": "application/json", "connect-protocol-version": "1" },
          body: "{}",
        });
      const allowed = await call(target.allowedOrigin);
      expect(allowed.status).toBe(200);
      expect(allowed.headers.get("access-control-allow-origin")).toBe(target.allowedOrigin);
      expect((allowed.headers.get("access-control-expose-headers") ?? "").toLowerCase()).toContain("grpc-status");
      const other = await call("http://evil.example");
      expect(other.headers.get("access-control-allow-origin")).toBeNull();
      const rest = await fetch(`${target.edge}/v1/locations`, { headers: { origin: target.allowedOrigin } });
      expect(rest.headers.get("access-control-allow-origin")).toBe(target.allowedOrigin);
    });
  });

  describe("what stays inside", () => {
    it("does not expose the services' grpc.health.v1.Health or reflection", async () => {
      for (const transport of [createGrpcTransport({ baseUrl: target.edge }), createConnectTransport({ baseUrl: target.edge, httpVersion: "1.1" })]) {
        const health = createClient(Health, transport);
        expect(Code[(await failure(health.check({ service: "" }))).code]).toBe(Code[Code.Unimplemented]);
        expect(Code[(await failure(health.check({ service: "myevents.v1.EventService" }))).code]).toBe(Code[Code.Unimplemented]);
      }
      const reflection = createClient(ServerReflection, createGrpcTransport({ baseUrl: target.edge }));
      const error = await failure(
        (async () => {
          const requests = (async function* () {
            yield { listServices: "" } as never;
          })();
          for await (const _ of reflection.serverReflectionInfo(requests, { timeoutMs: 5_000 })) {
            // no answer expected
          }
        })(),
      );
      expect(Code[error.code]).toBe(Code[Code.Unimplemented]);
      const plain = await fetch(`${target.edge}/grpc.health.v1.Health/Check`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
      expect(plain.status).toBe(404);
    });
  });
});
