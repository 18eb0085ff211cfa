// The gateway's per-client rate limit: the token bucket itself, then the
// gateway in front of real services answering ResourceExhausted in every
// RPC protocol and HTTP 429 for REST and plain HTTP.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, createClient, type Interceptor } from "@connectrpc/connect";
import { EventService } from "../gen/myevents/v1/event_service_pb.js";
import { authHeader, asUser } from "../services/runtime/auth/testing.js";
import { EnvReader } from "../services/runtime/config.js";
import { transports } from "../test/support/transports.js";
import { readGatewayConfig } from "./app.js";
import { TokenBuckets } from "./rate-limit.js";
import { failure, LOCAL, startServices, startTestGateway } from "./test-support.js";

describe("token buckets", () => {
  it("lets a burst through, then one request per refill interval, per key", () => {
    const buckets = new TokenBuckets({ perSecond: 2, burst: 3 });
    const t0 = 1_000_000;
    expect([1, 2, 3, 4].map(() => buckets.take("a", t0))).toEqual([0, 0, 0, 1]);
    expect(buckets.take("b", t0)).toBe(0); // another client is unaffected
    expect(buckets.take("a", t0 + 499)).toBe(1); // not yet half a second: no whole token
    expect(buckets.take("a", t0 + 500)).toBe(0);
    expect(buckets.take("a", t0 + 500)).toBe(1);
    // Idle for long: back to the burst, never beyond it.
    expect([1, 2, 3, 4].map(() => buckets.take("a", t0 + 60_000))).toEqual([0, 0, 0, 1]);
  });

  it("says how long to wait at slow rates", () => {
    const buckets = new TokenBuckets({ perSecond: 1, burst: 1 });
    expect(buckets.take("a", 0)).toBe(0);
    expect(buckets.take("a", 0)).toBe(1);
    expect(buckets.take("a", 100)).toBe(1);
  });

  it("keeps memory bounded however many clients come and go", () => {
    const buckets = new TokenBuckets({ perSecond: 1, burst: 2 }, 100);
    for (let i = 0; i < 1_000; i++) buckets.take(`client-${i}`, i * 10_000);
    expect(buckets.size).toBeLessThanOrEqual(100);
  });
});

describe("rate limit configuration", () => {
  const read = (env: Record<string, string>) => {
    const reader = new EnvReader({ ...LOCAL, ...env });
    const config = readGatewayConfig(reader);
    reader.done();
    return config.rateLimit;
  };
  it("is on by default, off with RATE_LIMIT_PER_SECOND=0, and refuses nonsense", () => {
    expect(read({})).toEqual({ perSecond: 50, burst: 100 });
    expect(read({ RATE_LIMIT_PER_SECOND: "5", RATE_LIMIT_BURST: "7" })).toEqual({ perSecond: 5, burst: 7 });
    expect(read({ RATE_LIMIT_PER_SECOND: "0" })).toBeUndefined();
    expect(() => read({ RATE_LIMIT_PER_SECOND: "-1", RATE_LIMIT_BURST: "lots" })).toThrow(
      /RATE_LIMIT_PER_SECOND must be between 0 and 1000000[\s\S]*RATE_LIMIT_BURST must be a whole number/,
    );
  });
});

describe("the gateway's per-client limit", () => {
  const BURST = 4;
  let services: Awaited<ReturnType<typeof startServices>>;
  let gw: Awaited<ReturnType<typeof startTestGateway>>;
  beforeAll(async () => {
    services = await startServices();
    gw = await startTestGateway({
      EVENTS_URL: services.eventsUrl,
      BOOKINGS_URL: services.bookingsUrl,
      NOTIFICATIONS_URL: "none",
      RATE_LIMIT_PER_SECOND: "1",
      RATE_LIMIT_BURST: String(BURST),
    });
  });
  afterAll(async () => {
    await gw?.gateway.shutdown();
    await services?.stop();
  });

  /**
   * The first BURST calls pass (a full bucket can only gain); then calls
   * go on until one is refused, which takes few at one token per second.
   */
  async function exhaust<T>(call: () => Promise<T>, refused: (result: T) => boolean): Promise<T> {
    for (let i = 0; i < BURST; i++) expect(refused(await call())).toBe(false);
    for (let i = 0; i < 50; i++) {
      const result = await call();
      if (refused(result)) return result;
    }
    throw new Error("never refused");
  }

  for (const protocol of Object.keys(transports("http://x"))) {
    it(`${protocol}: ResourceExhausted once a client's burst is spent; other clients go on`, async () => {
      const events = (as: Interceptor) => createClient(EventService, transports(gw.url, [as])[protocol]!);
      const user = events(asUser(`busy-${protocol}`));
      const codeOf = (call: Promise<unknown>) => failure(call).then((e) => e);
      // GetEvent of a missing event: NotFound from the service means the gateway let it through.
      const refusal = await exhaust(() => codeOf(user.getEvent({ id: "missing" })), (e) => e.code === Code.ResourceExhausted);
      expect(refusal.rawMessage).toMatch(/^rate limit exceeded for this client, retry in \d+s$/);
      expect((await codeOf(events(asUser(`calm-${protocol}`)).getEvent({ id: "missing" }))).code).toBe(Code.NotFound);
    });
  }

  it("answers a Connect call over plain HTTP with 429", async () => {
    const headers = { "content-type": "application/json", ...(await authHeader("connect-http")) };
    const post = () => fetch(`${gw.url}/myevents.v1.EventService/GetEvent`, { method: "POST", headers, body: JSON.stringify({ id: "missing" }) });
    const refused = await exhaust(post, (res) => res.status === 429);
    expect(await refused.json()).toMatchObject({ code: "resource_exhausted" });
  });

  it("answers REST with 429, a JSON error and Retry-After", async () => {
    const headers = await authHeader("rest-user");
    const refused = await exhaust(() => fetch(`${gw.url}/v1/events/missing`, { headers }), (res) => res.status === 429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(await refused.json()).toEqual({ code: Code.ResourceExhausted, message: expect.stringMatching(/^rate limit exceeded/), details: [] });
  });

  it("counts anonymous callers and bad tokens by address, so a made-up token buys no fresh bucket", async () => {
    let n = 0;
    const refused = await exhaust(
      () => fetch(`${gw.url}/v1/events/missing`, { headers: { authorization: `Bearer made-up-${n++}` } }),
      (res) => res.status === 429,
    );
    expect(refused.status).toBe(429);
    // The same address, anonymous, for a page: refused too (plain HTTP 429).
    const page = await fetch(`${gw.url}/index.html`);
    expect(page.status).toBe(429);
    expect(page.headers.get("content-type")).toMatch(/^text\/plain/);
    // A valid token is its own client.
    expect((await fetch(`${gw.url}/v1/events/missing`, { headers: await authHeader("someone-else") })).status).toBe(404);
  });

  it("counts refusals in gateway_rate_limited_total and grpc codes", async () => {
    const metrics = await (await fetch(`${gw.admin}/metrics`)).text();
    for (const protocol of ["grpc", "grpc-web", "connect", "rest", "http"]) {
      expect(metrics).toMatch(new RegExp(`gateway_rate_limited_total\\{[^}]*protocol="${protocol}"[^}]*\\} [1-9]`));
    }
    expect(metrics).toMatch(/gateway_requests_total\{[^}]*code="ResourceExhausted"[^}]*\} [1-9]/);
  });
});
