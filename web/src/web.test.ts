// The browser app's logic that needs no browser: token claims, error
// wording and the stream's reconnect loop. (The pages are tested in
// Chromium by test/browser.)
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe as group, expect, it } from "vitest";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { SubscribeResponseSchema, type SubscribeResponse } from "../../gen/myevents/v1/notification_service_pb.js";
import { credentialsInterceptor } from "./api.js";
import { describe } from "./errors.js";
import { keepSubscribed, type LiveStatus } from "./live.js";
import { parseToken } from "./session.js";

const jwt = (claims: object) => `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}.c2lnbmF0dXJl`;
const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");

group("parseToken", () => {
  it("reads sub, roles and exp", () => {
    const exp = Math.floor(Date.now() / 1000) + 60;
    expect(parseToken(` ${jwt({ sub: "zoë", roles: ["admin"], exp })}\n`)).toEqual({
      token: jwt({ sub: "zoë", roles: ["admin"], exp }),
      user: "zoë",
      admin: true,
      expires: new Date(exp * 1000),
    });
    expect(parseToken(jwt({ sub: "bob" }))).toMatchObject({ user: "bob", admin: false });
  });

  it("explains what is wrong with a pasted value", () => {
    expect(parseToken("alice")).toMatch(/not a token/);
    expect(parseToken("a.b!.c")).toMatch(/not a token/);
    expect(parseToken(`${b64({})}.bm90IGpzb24.x`)).toMatch(/not readable JSON/);
    expect(parseToken(jwt({ roles: [] }))).toMatch(/names no user/);
    expect(parseToken(jwt({ sub: "a", exp: 1 }))).toMatch(/expired/);
  });
});

group("credentialsInterceptor", () => {
  it("sends the signed-in user's token, and nothing for anonymous callers", async () => {
    const seen: Headers[] = [];
    const call = (session: Parameters<typeof credentialsInterceptor>[0]) =>
      credentialsInterceptor(session)(async (req) => {
        seen.push(req.header);
        return {} as never;
      })({ header: new Headers() } as never);
    await call(() => ({ token: "t.o.k", user: "alice", admin: false }));
    await call(() => undefined);
    expect(seen[0]!.get("authorization")).toBe("Bearer t.o.k");
    expect(seen[1]!.get("authorization")).toBeNull();
    expect(seen[0]!.get("x-user-id")).toBeNull(); // the services trust only the token
  });
});

group("describe", () => {
  it("keeps field violations for forms", () => {
    const err = new ConnectError("seats: must be between 1 and 10", Code.InvalidArgument, undefined, [
      { desc: BadRequestSchema, value: { fieldViolations: [{ field: "seats", description: "must be between 1 and 10" }] } },
    ]);
    expect(describe(err)).toEqual({ code: Code.InvalidArgument, message: "Some fields need attention.", fields: { seats: "must be between 1 and 10" } });
  });

  it("words each code for people, never leaking internals", () => {
    expect(describe(new ConnectError('event "e1" is sold out', Code.FailedPrecondition)).message).toBe('Event "e1" is sold out.');
    expect(describe(new ConnectError("x", Code.Unauthenticated)).message).toMatch(/sign in/);
    expect(describe(new ConnectError("x", Code.PermissionDenied)).message).toMatch(/administrator/);
    expect(describe(new ConnectError("stack trace", Code.Internal)).message).not.toContain("stack");
    expect(describe(new TypeError("Failed to fetch")).message).toMatch(/cannot be reached/);
  });
});

group("keepSubscribed", () => {
  const message = (seats: number) => create(SubscribeResponseSchema, { change: { case: "eventChange", value: { eventId: "e", seatsAvailable: seats } } });

  it("reopens ended streams with growing, capped delays and resyncs after each gap", async () => {
    const abort = new AbortController();
    const statuses: LiveStatus[] = [];
    const received: number[] = [];
    let opens = 0;
    let resyncs = 0;
    // Fails three times before answering, then delivers and ends (as on ResourceExhausted), then delivers and stays.
    async function* stream(): AsyncGenerator<SubscribeResponse> {
      opens++;
      if (opens <= 3) throw new ConnectError("down", Code.Unavailable);
      yield message(10 - opens);
      if (opens === 4) throw new ConnectError("subscriber too slow", Code.ResourceExhausted);
      abort.abort();
    }
    await keepSubscribed({
      signal: abort.signal,
      subscribe: stream,
      onStatus: (s) => statuses.push(s),
      onMessage: (m) => received.push(m.change.case === "eventChange" ? m.change.value.seatsAvailable : -1),
      onResync: () => resyncs++,
      baseDelayMs: 10,
      maxDelayMs: 25,
      random: () => 1, // the top of each jitter range, to see the schedule
    });
    expect(received).toEqual([6, 5]);
    const delays = statuses.flatMap((s) => (s.state === "reconnecting" ? [s.inMs] : []));
    // Doubling from 10 ms, capped at 25; a delivered message resets it.
    expect(delays).toEqual([10, 20, 25, 10]);
    expect(statuses.filter((s) => s.state === "reconnecting").map((s) => (s as { reason: string }).reason)).toEqual([
      "[unavailable] down",
      "[unavailable] down",
      "[unavailable] down",
      "[resource_exhausted] subscriber too slow",
    ]);
    expect(resyncs).toBe(2); // on the first message of each stream that opened
    expect(statuses.filter((s) => s.state === "live")).toHaveLength(2);
  });

  it("stops at once when its page goes away", async () => {
    const abort = new AbortController();
    let opens = 0;
    const done = keepSubscribed({
      signal: abort.signal,
      subscribe: async function* () {
        opens++;
        throw new ConnectError("down", Code.Unavailable);
      },
      onStatus: () => {},
      onMessage: () => {},
      baseDelayMs: 60_000,
    });
    await new Promise((r) => setTimeout(r, 20));
    abort.abort();
    await done;
    expect(opens).toBe(1);
  });
});
