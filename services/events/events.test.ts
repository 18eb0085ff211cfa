// The EventService as it runs: real server on a real socket, MongoDB-wire
// store (FerretDB), called through every protocol and by independent
// clients (grpc-js with the .proto files, plain HTTP JSON).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { timestampFromDate, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { MongoClient } from "mongodb";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { EventState } from "../../gen/myevents/v1/event_pb.js";
import { EventService } from "../../gen/myevents/v1/event_service_pb.js";
import { EnvReader } from "../runtime/config.js";
import { createLogger } from "../runtime/logger.js";
import type { RunningService } from "../runtime/server.js";
import { mongodbUrl, uniqueDatabaseName } from "../../test/support/backing.js";
import { transports } from "../../test/support/transports.js";
import { asAdmin, authHeader, TEST_AUTH_ENV } from "../runtime/auth/testing.js";
import { MemoryMessageBus } from "../messaging/memory.js";
import { readEventsConfig, startEventsService } from "./app.js";
import { PROTO_INCLUDE_DIRS } from "../../test/support/protos.js";

const HOUR = 3_600_000;
const silent = createLogger("error", {}, () => {});

function testConfig(database: string, extra: Record<string, string> = {}) {
  const env = new EnvReader({ PORT: "0", ADMIN_PORT: "0", HOST: "127.0.0.1", MONGODB_URL: mongodbUrl(), EVENTS_DATABASE: database, ...TEST_AUTH_ENV, ...extra });
  const config = readEventsConfig(env);
  env.done();
  return config;
}

const newLocation = (name = "Arena") => ({ location: { name, address: "Main St 1", country: "de", halls: [{ name: "A", capacity: 100 }, { name: "B", capacity: 10 }] } });
const newEvent = (locationId: string, name = "Concert", startInHours = 24) => ({
  event: {
    name,
    locationId,
    hall: "A",
    startTime: timestampFromDate(new Date(Date.now() + startInHours * HOUR)),
    endTime: timestampFromDate(new Date(Date.now() + (startInHours + 2) * HOUR)),
  },
});

describe("EventService over MongoDB", () => {
  let service: RunningService;
  let baseUrl: string;
  const database = uniqueDatabaseName("events_e2e");

  beforeAll(async () => {
    service = await startEventsService(testConfig(database), { logger: silent, bus: new MemoryMessageBus() });
    baseUrl = `http://127.0.0.1:${service.port}`;
  });
  afterAll(async () => {
    await service?.shutdown();
    const client = await MongoClient.connect(mongodbUrl());
    await client.db(database).dropDatabase();
    await client.close();
  });

  for (const [protocol, make] of Object.entries({ ...transportsLazy() })) {
    it(`runs the whole flow over ${protocol}`, async () => {
      const client = createClient(EventService, make(baseUrl));
      const { location } = await client.createLocation(newLocation(`Hall of ${protocol}`));
      expect(location?.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(location?.country).toBe("DE");

      const { event } = await client.createEvent(newEvent(location!.id, `Show over ${protocol}`));
      expect(event).toMatchObject({ capacity: 100, seatsAvailable: 100, state: EventState.SCHEDULED, hall: "A" });

      const got = await client.getEvent({ id: event!.id });
      expect(got.event).toEqual(event);
      expect((await client.getLocation({ id: location!.id })).location).toEqual(location);

      const listed = await client.listEvents({ locationId: location!.id });
      expect(listed.events.map((e) => e.id)).toEqual([event!.id]);

      const cancelled = await client.cancelEvent({ id: event!.id, reason: "rain" });
      expect(cancelled.event?.state).toBe(EventState.CANCELLED);
      expect((await client.cancelEvent({ id: event!.id })).event?.state).toBe(EventState.CANCELLED);

      const missing = await client.getEvent({ id: "no-such-event" }).catch((e: unknown) => e);
      expect(ConnectError.from(missing).code).toBe(Code.NotFound);
    });
  }

  it("reports every invalid field at once, as InvalidArgument with BadRequest details", async () => {
    const client = createClient(EventService, transports(baseUrl, [asAdmin()])["gRPC (HTTP/2)"]!);
    const { location } = await client.createLocation(newLocation());
    const start = new Date(Date.now() + 48 * HOUR);
    const err = await client
      .createEvent({ event: { name: " ", locationId: location!.id, hall: "B", capacity: 11, startTime: timestampFromDate(start), endTime: timestampFromDate(new Date(start.getTime() - HOUR)) } })
      .catch((e: unknown) => ConnectError.from(e));
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    // The contract's rules are checked first (here: the blank name)...
    const [details] = (err as ConnectError).findDetails(BadRequestSchema);
    expect(details?.fieldViolations).toEqual([expect.objectContaining({ field: "event.name", description: "must not be blank" })]);
    const rules = await client
      .createLocation({ location: { name: "", country: "DEU", halls: [{ name: "A", capacity: 0 }, { name: "A", capacity: 1 }] } })
      .catch((e: unknown) => ConnectError.from(e));
    expect((rules as ConnectError).findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field).sort()).toEqual([
      "location.country",
      "location.halls",
      "location.halls[0].capacity",
      "location.name",
    ]);
    // ...then the handler's checks that need data, again all at once.
    const business = await client
      .createEvent({ event: { name: "Gig", locationId: location!.id, hall: "B", capacity: 11, startTime: timestampFromDate(start), endTime: timestampFromDate(new Date(start.getTime() - HOUR)) } })
      .catch((e: unknown) => ConnectError.from(e));
    expect((business as ConnectError).findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field).sort()).toEqual(["event.capacity", "event.end_time"]);

    const unknownPlace = await client.createEvent(newEvent("nowhere")).catch((e: unknown) => ConnectError.from(e));
    expect((unknownPlace as ConnectError).findDetails(BadRequestSchema)[0]?.fieldViolations).toEqual([
      expect.objectContaining({ field: "event.location_id" }),
    ]);
    const unknownHall = await client.createEvent({ event: { ...newEvent(location!.id).event, hall: "Z" } }).catch((e: unknown) => ConnectError.from(e));
    expect((unknownHall as ConnectError).rawMessage).toMatch(/event.hall: is not a hall of this location/);
  });

  it("pages events with opaque tokens and applies name, location and time filters", async () => {
    const client = createClient(EventService, transports(baseUrl, [asAdmin()])["Connect binary (HTTP/2)"]!);
    const { location } = await client.createLocation(newLocation("Paging Palace"));
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const { event } = await client.createEvent(newEvent(location!.id, i % 2 ? `Jazz night ${i}` : `Rock ${i}`, 100 + i));
      ids.push(event!.id);
    }
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await client.listEvents({ locationId: location!.id, pageSize: 3, pageToken });
      expect(page.events.length).toBeLessThanOrEqual(3);
      seen.push(...page.events.map((e) => e.id));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(seen).toEqual(ids);

    const jazz = await client.listEvents({ locationId: location!.id, query: "JAZZ" });
    expect(jazz.events.map((e) => e.name)).toEqual(["Jazz night 1", "Jazz night 3", "Jazz night 5"]);

    const window = await client.listEvents({
      locationId: location!.id,
      startAfter: timestampFromDate(new Date(Date.now() + 101.5 * HOUR)),
      startBefore: timestampFromDate(new Date(Date.now() + 104.5 * HOUR)),
    });
    expect(window.events.map((e) => e.name)).toEqual(["Rock 2", "Jazz night 3", "Rock 4"]);
    for (const e of window.events) expect(timestampMs(e.startTime!)).toBeGreaterThan(Date.now() + 101 * HOUR);

    const first = await client.listEvents({ locationId: location!.id, pageSize: 2 });
    const reused = await client.listEvents({ query: "rock", pageToken: first.nextPageToken }).catch((e: unknown) => ConnectError.from(e));
    expect((reused as ConnectError).code).toBe(Code.InvalidArgument);
    const forged = await client.listEvents({ pageToken: "not-a-token" }).catch((e: unknown) => ConnectError.from(e));
    expect((forged as ConnectError).findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("page_token");
  });

  it("serves a grpc-js client that loads the .proto files", async () => {
    const definition = protoLoader.loadSync("myevents/v1/event_service.proto", {
      includeDirs: PROTO_INCLUDE_DIRS,
      defaults: true,
      enums: String,
    });
    const loaded = grpc.loadPackageDefinition(definition) as any;
    const client = new loaded.myevents.v1.EventService(`127.0.0.1:${service.port}`, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    metadata.set("authorization", (await authHeader("grpc-js-admin", { admin: true })).authorization);
    const call = <T>(method: string, req: object, deadlineMs = 5000) =>
      new Promise<T>((resolve, reject) =>
        client[method](req, metadata, { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res))),
      );
    try {
      const { location } = await call<any>("CreateLocation", newLocation("grpc-js Hall"));
      const start = Math.floor(Date.now() / 1000) + 86_400;
      const { event } = await call<any>("CreateEvent", {
        event: { name: "grpc-js night", locationId: location.id, hall: "B", startTime: { seconds: start }, endTime: { seconds: start + 3600 } },
      });
      const got = await call<any>("GetEvent", { id: event.id });
      expect(got.event).toMatchObject({ name: "grpc-js night", capacity: 10, seatsAvailable: 10, state: "EVENT_STATE_SCHEDULED" });
      expect(Number(got.event.startTime.seconds)).toBe(start);

      const notFound = await call("GetEvent", { id: "missing" }).catch((e: grpc.ServiceError) => e);
      expect((notFound as grpc.ServiceError).code).toBe(grpc.status.NOT_FOUND);
      const invalid = await call("GetEvent", { id: "" }).catch((e: grpc.ServiceError) => e);
      expect((invalid as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
      // Field violations travel in grpc-status-details-bin as a google.rpc.Status.
      const details = (invalid as grpc.ServiceError).metadata.get("grpc-status-details-bin")[0] as Buffer;
      expect(details).toBeDefined();
      const tooLong = await call("ListEvents", {}, 10 * 3_600_000).catch((e: grpc.ServiceError) => e);
      expect((tooLong as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT); // deadline above MAX_DEADLINE_MS
    } finally {
      client.close();
    }
  });

  it("answers a plain HTTP JSON POST (Connect protocol) with proper status codes", async () => {
    const admin = await authHeader("http-admin", { admin: true });
    const post = (method: string, body: unknown) =>
      fetch(`${baseUrl}/myevents.v1.EventService/${method}`, { method: "POST", headers: { "content-type": "application/json", ...admin }, body: JSON.stringify(body) });
    const list = await post("ListEvents", {});
    expect(list.status).toBe(200);
    const json = (await list.json()) as { events?: unknown[] };
    expect(Array.isArray(json.events)).toBe(true);

    const missing = await post("GetEvent", { id: "missing" });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: "not_found" });

    const bad = await post("CreateLocation", { location: { name: "x", halls: [{ name: "A", capacity: "lots" }] } });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: "invalid_argument" });

    // Read-only methods allow Connect GET (idempotency_level = NO_SIDE_EFFECTS).
    const get = await fetch(`${baseUrl}/myevents.v1.EventService/ListLocations?encoding=json&message=${encodeURIComponent("{}")}`);
    expect(get.status).toBe(200);
  });

  it("exports go-grpc-prometheus metrics and readiness on the admin port", async () => {
    const admin = `http://127.0.0.1:${service.adminPort}`;
    const metrics = await (await fetch(`${admin}/metrics`)).text();
    expect(metrics).toMatch(/grpc_server_handled_total\{[^}]*grpc_service="myevents.v1.EventService"[^}]*grpc_method="GetEvent"[^}]*grpc_code="NotFound"[^}]*\} [1-9]/);
    expect(metrics).toMatch(/grpc_server_started_total\{[^}]*grpc_method="CreateEvent"/);
    expect(metrics).toMatch(/grpc_server_handling_seconds_bucket\{/);
    expect(metrics).toMatch(/process_resident_memory_bytes/);
    expect((await fetch(`${admin}/readyz`)).status).toBe(200);
    expect((await fetch(`${admin}/healthz`)).status).toBe(200);
  });
});

describe("EventService with its database unreachable", () => {
  it("starts NOT_SERVING, answers Unavailable, and is not ready", async () => {
    const env = new EnvReader({
      PORT: "0", ADMIN_PORT: "0", HOST: "127.0.0.1",
      MONGODB_URL: "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300", HEALTH_CHECK_INTERVAL_MS: "500", ...TEST_AUTH_ENV,
    });
    const config = readEventsConfig(env);
    const service = await startEventsService(config, { logger: silent, bus: new MemoryMessageBus() });
    try {
      expect(service.health.isServing).toBe(false);
      expect((await fetch(`http://127.0.0.1:${service.adminPort}/readyz`)).status).toBe(503);
      const client = createClient(EventService, transports(`http://127.0.0.1:${service.port}`)["gRPC (HTTP/2)"]!);
      const err = await client.getEvent({ id: "x" }).catch((e: unknown) => ConnectError.from(e));
      expect((err as ConnectError).code).toBe(Code.Unavailable);
    } finally {
      await service.shutdown();
    }
  });
});

// Transports are created per test so each gets fresh connections.
function transportsLazy() {
  const names = Object.keys(transports("http://x"));
  return Object.fromEntries(names.map((name) => [name, (url: string) => transports(url, [asAdmin()])[name]!]));
}
