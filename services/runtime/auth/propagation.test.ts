import { create } from "@bufbuild/protobuf";
import type { UnaryRequest, UnaryResponse } from "@connectrpc/connect";
import { describe, expect, it, vi } from "vitest";
import { EventService, GetLocationRequestSchema } from "../../../gen/myevents/v1/event_service_pb.js";

type Propagation = typeof import("./propagation.js");

/** A fresh copy of the module: its forwarding flag is per process. */
async function fresh(): Promise<Propagation> {
  vi.resetModules();
  return import("./propagation.js");
}

function request(): UnaryRequest {
  return { header: new Headers(), method: EventService.method.getLocation, message: create(GetLocationRequestSchema) } as unknown as UnaryRequest;
}

/** The authorization header a forwarding client interceptor would send for `req`. */
async function sent(p: Propagation, req: UnaryRequest): Promise<string | null> {
  let seen: string | null = null;
  await p.forwardCallerCredentials()(async (r) => {
    seen = r.header.get("authorization");
    return {} as UnaryResponse;
  })(req);
  return seen;
}

describe("caller credentials", () => {
  it("are not kept in a process where no client forwards them (the store is not entered)", async () => {
    const p = await fresh();
    expect(p.forwardsCallerCredentials()).toBe(false);
    // The client is made inside the served call, after it started: the call kept nothing.
    expect(await p.runWithCallerCredentials("Bearer early", () => sent(p, request()))).toBeNull();
    expect(p.forwardsCallerCredentials()).toBe(true);
  });

  it("are forwarded once a client forwards them, unless the request sets its own", async () => {
    const p = await fresh();
    p.forwardCallerCredentials();
    expect(await p.runWithCallerCredentials("Bearer alice", () => Promise.resolve().then(() => sent(p, request())))).toBe("Bearer alice");
    const own = request();
    own.header.set("authorization", "Bearer own");
    expect(await p.runWithCallerCredentials("Bearer alice", () => sent(p, own))).toBe("Bearer own");
    expect(await sent(p, request())).toBeNull();
  });
});
