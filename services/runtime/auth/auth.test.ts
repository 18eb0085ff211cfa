// Authentication and authorization as callers meet them: real services on
// real sockets, every protocol, real signatures (HS256 and a JWKS served
// over HTTP for RS256/ES256), the token script as a user runs it.
import { execFile } from "node:child_process";
import { mkdtempSync, statSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from "jose";
import { Health } from "../../../gen/health/v1/health_pb.js";
import { BookingService } from "../../../gen/myevents/v1/booking_service_pb.js";
import { EventService } from "../../../gen/myevents/v1/event_service_pb.js";
import { NotificationService } from "../../../gen/myevents/v1/notification_service_pb.js";
import { ServerReflection } from "../../../gen/grpc/reflection/v1/reflection_pb.js";
import { failure, silent, startServices } from "../../../gateway/test-support.js";
import { transports } from "../../../test/support/transports.js";
import { EnvReader, readRuntimeConfig } from "../config.js";
import { callerKey, rolesKey } from "../identity.js";
import { serve, startService, type RunningService } from "../server.js";
import { readAuthConfig } from "./config.js";
import { developmentSecret } from "./dev-secret.js";
import { accessOf } from "./policy.js";
import { forwardCallerCredentials } from "./propagation.js";
import { asAdmin, asUser, TEST_AUTH_ENV, TEST_JWT_SECRET, testToken, withAuthorization } from "./testing.js";
import { createTokenVerifier, signToken } from "./tokens.js";

const HOUR = 3_600_000;
const bearer = withAuthorization;
const newLocation = { location: { name: "Auth Arena", country: "DE", halls: [{ name: "Main", capacity: 1000 }] } };
const newEvent = (locationId: string) => ({
  event: {
    name: "Auth show",
    locationId,
    hall: "Main",
    startTime: timestampFromDate(new Date(Date.now() + 24 * HOUR)),
    endTime: timestampFromDate(new Date(Date.now() + 26 * HOUR)),
  },
});
const unsecured = (claims: object) =>
  `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.`;

describe("access policy", () => {
  it("opens NO_SIDE_EFFECTS methods, guards the rest, and names the admin-only ones", () => {
    const table = Object.fromEntries(
      [EventService, BookingService, NotificationService, Health, ServerReflection].flatMap((s) => s.methods.map((m) => [`${s.name}.${m.name}`, accessOf(m)])),
    );
    expect(table).toEqual({
      "EventService.CreateLocation": "admin",
      "EventService.GetLocation": "public",
      "EventService.ListLocations": "public",
      "EventService.CreateEvent": "admin",
      "EventService.GetEvent": "public",
      "EventService.ListEvents": "public",
      "EventService.CancelEvent": "admin",
      "BookingService.CreateBooking": "user",
      "BookingService.GetBooking": "user",
      "BookingService.ListBookings": "user",
      "BookingService.CancelBooking": "user",
      "NotificationService.Subscribe": "public",
      "Health.Check": "open",
      "Health.Watch": "open",
      "Health.List": "open",
      "ServerReflection.ServerReflectionInfo": "open",
    });
  });
});

describe("authentication and authorization in the services", () => {
  let mesh: Awaited<ReturnType<typeof startServices>>;
  let eventId: string;
  beforeAll(async () => {
    mesh = await startServices();
    const admin = createClient(EventService, createGrpcTransport({ baseUrl: mesh.eventsUrl, interceptors: [asAdmin()] }));
    const { location } = await admin.createLocation(newLocation);
    eventId = (await admin.createEvent(newEvent(location!.id))).event!.id;
  });
  afterAll(async () => {
    await mesh?.stop();
  });

  for (const protocol of Object.keys(transports("http://x"))) {
    describe(protocol, () => {
      const events = (...interceptors: Interceptor[]) => createClient(EventService, transports(mesh.eventsUrl, interceptors)[protocol]!);
      const bookings = (...interceptors: Interceptor[]) => createClient(BookingService, transports(mesh.bookingsUrl, interceptors)[protocol]!);
      const rejection = async (call: Promise<unknown>) => {
        const err = await failure(call);
        return { code: Code[err.code], message: err.rawMessage };
      };

      it("lets anonymous callers read, and only read", async () => {
        expect((await events().getEvent({ id: eventId })).event?.id).toBe(eventId);
        expect((await events().listLocations({})).locations.length).toBeGreaterThan(0);
        expect(await rejection(events().createLocation(newLocation))).toEqual({
          code: "Unauthenticated",
          message: "CreateLocation needs a bearer token (authorization: Bearer <JWT>)",
        });
        expect((await rejection(bookings().createBooking({ eventId, seats: 1, requestId: "anon" }))).code).toBe("Unauthenticated");
        // Reads of the caller's own bookings need a caller.
        expect((await rejection(bookings().listBookings({}))).code).toBe("Unauthenticated");
      });

      it("refuses expired, forged, unsigned and malformed tokens, saying which", async () => {
        const cases: Array<[string, string]> = [
          [`Bearer ${await testToken("eve", { admin: true, ttlSeconds: -120 })}`, "token expired"],
          [`Bearer ${await testToken("eve", { admin: true, secret: "another-secret-of-at-least-32-bytes!" })}`, "token signature is invalid"],
          [`Bearer ${unsecured({ sub: "eve", roles: ["admin"], exp: Math.floor(Date.now() / 1000) + 600 })}`, "token algorithm is not accepted"],
          [`Bearer ${await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("eve").sign(new TextEncoder().encode(TEST_JWT_SECRET))}`, 'invalid token claim: missing required "exp" claim'],
          ["Bearer not.a.jwt", "token is malformed"],
          ["Bearer ", 'authorization header must be "Bearer <token>"'],
          [`Basic ${Buffer.from("eve:pw").toString("base64")}`, 'authorization header must be "Bearer <token>"'],
          [`Bearer ${await signToken(TEST_JWT_SECRET, { subject: "", ttlSeconds: 60 })}`, "token subject (sub) must be 1-256 printable characters"],
        ];
        for (const [authorization, message] of cases) {
          expect(await rejection(events(bearer(authorization)).createLocation(newLocation))).toEqual({ code: "Unauthenticated", message });
          // A bad token is refused on reads too, rather than silently ignored.
          expect(await rejection(events(bearer(authorization)).getEvent({ id: eventId }))).toEqual({ code: "Unauthenticated", message });
        }
      });

      it("lets users book but only admins create or cancel locations and events", async () => {
        const user = events(asUser("ursula"));
        expect(await rejection(user.createLocation(newLocation))).toEqual({ code: "PermissionDenied", message: "CreateLocation needs the admin role" });
        expect((await rejection(user.createEvent(newEvent("x")))).code).toBe("PermissionDenied");
        expect((await rejection(user.cancelEvent({ id: eventId }))).code).toBe("PermissionDenied");
        const admin = events(asAdmin());
        const { location } = await admin.createLocation(newLocation);
        expect(location?.id).toBeTruthy();
        const { booking } = await bookings(asUser("ursula")).createBooking({ eventId, seats: 1, requestId: `r-${protocol}` });
        expect(booking?.userId).toBe("ursula");
      });

      it("keeps each user's bookings to that user", async () => {
        const alice = bookings(asUser(`alice-${protocol}`));
        const bob = bookings(asUser(`bob-${protocol}`));
        const { booking } = await alice.createBooking({ eventId, seats: 1, requestId: "mine" });
        expect((await alice.getBooking({ id: booking!.id })).booking?.id).toBe(booking!.id);
        // Another user's booking does not exist for bob (NotFound, so ids reveal nothing).
        expect((await rejection(bob.getBooking({ id: booking!.id }))).code).toBe("NotFound");
        expect((await rejection(bob.cancelBooking({ id: booking!.id }))).code).toBe("NotFound");
        expect((await bob.listBookings({})).bookings).toEqual([]);
        // The same request_id is bob's own key, not a clash with alice's.
        expect((await bob.createBooking({ eventId, seats: 1, requestId: "mine" })).booking?.id).not.toBe(booking!.id);
        expect((await alice.listBookings({})).bookings.map((b) => b.id)).toEqual([booking!.id]);
      });
    });
  }

  it("leaves health checks and reflection open, whatever the caller sends", async () => {
    const health = createClient(Health, createGrpcTransport({ baseUrl: mesh.eventsUrl, interceptors: [bearer("Bearer garbage")] }));
    expect((await health.check({})).status).toBe(1);
  });
});

describe("the user id travels with service-to-service calls", () => {
  let back: RunningService;
  let front: RunningService;
  beforeAll(async () => {
    const env = new EnvReader({ HOST: "127.0.0.1", PORT: "0", ADMIN_PORT: "0", ...TEST_AUTH_ENV });
    const config = readRuntimeConfig(env, { port: 0, adminPort: 0 });
    // The back end answers with who it thinks is calling.
    back = await startService({
      name: "back",
      config,
      logger: silent,
      services: [serve(EventService, { getLocation: (_req, ctx) => ({ location: { id: ctx.values.get(callerKey), name: ctx.values.get(rolesKey).join(",") } }) })],
    });
    const downstream = createClient(EventService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${back.port}`, interceptors: [forwardCallerCredentials()] }));
    // The front end asks the back end while serving a call (as bookings asks events).
    front = await startService({
      name: "front",
      config,
      logger: silent,
      services: [serve(EventService, { getLocation: async () => downstream.getLocation({ id: "who" }) })],
    });
  });
  afterAll(async () => {
    await front?.shutdown();
    await back?.shutdown();
  });

  it("forwards the caller's token, and nothing when the caller is anonymous", async () => {
    const url = `http://127.0.0.1:${front.port}`;
    const asAlice = createClient(EventService, createGrpcTransport({ baseUrl: url, interceptors: [asUser("alice", { admin: true })] }));
    expect((await asAlice.getLocation({ id: "x" })).location).toMatchObject({ id: "alice", name: "admin" });
    const anonymous = createClient(EventService, createGrpcTransport({ baseUrl: url }));
    expect((await anonymous.getLocation({ id: "x" })).location).toMatchObject({ id: "anonymous", name: "" });
  });
});

describe("RS256 and ES256 tokens verified with a JWKS fetched over HTTP", () => {
  let jwks: http.Server;
  let service: RunningService;
  let keys: Record<"rsa" | "ec" | "stranger", CryptoKey>;
  let fetches = 0;
  beforeAll(async () => {
    const rsa = await generateKeyPair("RS256");
    const ec = await generateKeyPair("ES256");
    const stranger = await generateKeyPair("RS256");
    keys = { rsa: rsa.privateKey, ec: ec.privateKey, stranger: stranger.privateKey };
    const body = JSON.stringify({
      keys: [
        { ...(await exportJWK(rsa.publicKey)), kid: "rsa-1", alg: "RS256", use: "sig" },
        { ...(await exportJWK(ec.publicKey)), kid: "ec-1", alg: "ES256", use: "sig" },
      ],
    });
    jwks = http.createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { "content-type": "application/json" }).end(body);
    });
    await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
    const env = new EnvReader({
      HOST: "127.0.0.1",
      PORT: "0",
      ADMIN_PORT: "0",
      JWT_JWKS_URL: `http://127.0.0.1:${(jwks.address() as { port: number }).port}/.well-known/jwks.json`,
      JWT_ISSUER: "https://id.example.test",
      JWT_AUDIENCE: "myevents",
    });
    const config = readRuntimeConfig(env, { port: 0, adminPort: 0 });
    env.done();
    service = await startService({
      name: "jwks",
      config,
      logger: silent,
      services: [serve(EventService, { createLocation: (_req, ctx) => ({ location: { id: ctx.values.get(callerKey) } }) })],
    });
  });
  afterAll(async () => {
    await service?.shutdown();
    jwks?.close();
  });

  const sign = (key: CryptoKey, alg: string, kid: string, claims: { iss?: string; aud?: string } = { iss: "https://id.example.test", aud: "myevents" }) => {
    const jwt = new SignJWT({ roles: ["admin"] }).setProtectedHeader({ alg, kid }).setSubject("idp-user|42").setExpirationTime("5m");
    if (claims.iss) jwt.setIssuer(claims.iss);
    if (claims.aud) jwt.setAudience(claims.aud);
    return jwt.sign(key);
  };
  const create = async (token: string) => {
    const client = createClient(EventService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${service.port}`, interceptors: [bearer(`Bearer ${token}`)] }));
    try {
      return (await client.createLocation(newLocation)).location?.id;
    } catch (err) {
      const e = ConnectError.from(err);
      return `${Code[e.code]}: ${e.rawMessage}`;
    }
  };

  it("accepts tokens signed by the published keys, and only those", async () => {
    expect(await create(await sign(keys.rsa, "RS256", "rsa-1"))).toBe("idp-user|42");
    expect(await create(await sign(keys.ec, "ES256", "ec-1"))).toBe("idp-user|42");
    expect(fetches).toBeGreaterThan(0);
    expect(await create(await sign(keys.stranger, "RS256", "rsa-1"))).toBe("Unauthenticated: token signature is invalid");
    expect(await create(await sign(keys.stranger, "RS256", "other"))).toBe("Unauthenticated: token is signed by an unknown key");
    // An HS256 token (e.g. signed with a public key as the secret) is never accepted here.
    expect(await create(await testToken("eve", { admin: true }))).toBe("Unauthenticated: token algorithm is not accepted");
  });

  it("checks issuer and audience", async () => {
    expect(await create(await sign(keys.rsa, "RS256", "rsa-1", { iss: "https://evil.example.test", aud: "myevents" }))).toBe(
      'Unauthenticated: invalid token claim: unexpected "iss" claim value',
    );
    expect(await create(await sign(keys.rsa, "RS256", "rsa-1", { iss: "https://id.example.test", aud: "someone-else" }))).toBe(
      'Unauthenticated: invalid token claim: unexpected "aud" claim value',
    );
  });
});

describe("configuration and the development secret", () => {
  it("makes the development secret once, private to the user, and verifies with it", async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), "myevents-auth-")), "nested", "dev-jwt-secret");
    const first = developmentSecret(file);
    expect(first.created).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(developmentSecret(file)).toEqual({ secret: first.secret, created: false });
    const verifier = createTokenVerifier({ keys: { kind: "development", file }, clockToleranceSeconds: 0 });
    expect(await verifier.verify(await signToken(first.secret, { subject: "dev", ttlSeconds: 60 }))).toEqual({ subject: "dev", roles: [] });
  });

  it("remembers a verified token no longer than the token lives", async () => {
    const verifier = createTokenVerifier({ keys: { kind: "secret", secret: TEST_JWT_SECRET }, clockToleranceSeconds: 0 });
    // `exp` is in whole seconds: a 1 s token signed late in a second has almost no life left, so
    // this one gets 2 s and the test waits for its own `exp` rather than a fixed time.
    const token = await signToken(TEST_JWT_SECRET, { subject: "brief", ttlSeconds: 2 });
    const exp = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()).exp as number;
    expect((await verifier.verify(token)).subject).toBe("brief");
    expect((await verifier.verify(token)).subject).toBe("brief");
    await new Promise((resolve) => setTimeout(resolve, exp * 1000 - Date.now() + 100));
    await expect(verifier.verify(token)).rejects.toMatchObject({ code: Code.Unauthenticated, rawMessage: "token expired" });
  });

  it("names each bad variable", () => {
    const env = new EnvReader({ JWT_SECRET: "short", JWT_CLOCK_TOLERANCE_SECONDS: "-1" });
    readAuthConfig(env);
    expect(() => env.done()).toThrow(/JWT_SECRET must be at least 32 bytes long[\s\S]*JWT_CLOCK_TOLERANCE_SECONDS must be between 0 and 300/);
    const both = new EnvReader({ JWT_SECRET: TEST_JWT_SECRET, JWT_JWKS_URL: "https://id.example.test/jwks" });
    readAuthConfig(both);
    expect(() => both.done()).toThrow(/JWT_SECRET and JWT_JWKS_URL are both set/);
  });
});

describe("npm run token", () => {
  const run = (args: string[], env: Record<string, string> = {}) =>
    promisify(execFile)(process.execPath, ["--import", "tsx", "scripts/token.ts", ...args], { env: { ...process.env, JWT_JWKS_URL: "", ...env } });

  it("prints a token the services accept, with the admin role when asked", async () => {
    const { stdout } = await run(["--user", "scripted", "--admin", "--ttl", "10m"], TEST_AUTH_ENV);
    const token = stdout.trim();
    const verifier = createTokenVerifier(readAuthConfig(new EnvReader(TEST_AUTH_ENV)));
    expect(await verifier.verify(token)).toEqual({ subject: "scripted", roles: ["admin"] });
    const exp = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()).exp as number;
    expect(exp - Date.now() / 1000).toBeGreaterThan(9 * 60);
    expect(exp - Date.now() / 1000).toBeLessThanOrEqual(10 * 60);
  });

  it("refuses bad arguments with the usage", async () => {
    const err = (await run(["--user", "x", "--ttl", "forever"], TEST_AUTH_ENV).catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(err.code).toBe(64);
    expect(err.stderr).toMatch(/--ttl "forever" is not a duration\nusage: npm run --silent token/);
  });
});
