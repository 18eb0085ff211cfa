import { once } from "node:events";
import net from "node:net";
import { describe, expect, it } from "vitest";
import { Code, ConnectError, createContextValues, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";
import { EventService } from "../../gen/myevents/v1/event_service_pb.js";
import { isUnavailable } from "./errors.js";
import { errorsInterceptor } from "./interceptors/errors.js";
import { observingInterceptor, type RpcOutcome } from "./interceptors/outcome.js";

/** The error Node gives a write to a socket whose other side has ended it (what the MongoDB driver let through during a database outage). */
async function writeAfterPeerEnded(): Promise<Error> {
  const server = net.createServer((socket) => socket.end());
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const socket = net.connect({ port: (server.address() as net.AddressInfo).port, host: "127.0.0.1" });
  try {
    await once(socket, "end"); // the peer's FIN
    const failed = once(socket, "error") as Promise<[Error]>;
    socket.write("after the end");
    return (await failed)[0];
  } finally {
    socket.destroy();
    server.close();
  }
}

describe("isUnavailable", () => {
  it("counts the driver's outage errors and raw socket errors as unavailability, not other errors", async () => {
    const named = (name: string) => Object.assign(new Error("x"), { name });
    expect(isUnavailable(named("MongoServerSelectionError"))).toBe(true);
    expect(isUnavailable(named("MongoNetworkError"))).toBe(true);
    const socketError = await writeAfterPeerEnded();
    expect((socketError as NodeJS.ErrnoException).code).toBe("EPIPE");
    expect(isUnavailable(socketError)).toBe(true);
    expect(isUnavailable(Object.assign(new Error("refused"), { code: "ECONNREFUSED" }))).toBe(true);
    expect(isUnavailable(new Error("a bug"))).toBe(false);
    expect(isUnavailable(named("MongoServerError"))).toBe(false);
    expect(isUnavailable("EPIPE")).toBe(false);
  });
});

describe("observingInterceptor with settleErrors", () => {
  const method = EventService.method.getEvent;
  const request = () => ({ stream: false, method, service: EventService, header: new Headers(), signal: new AbortController().signal, contextValues: createContextValues() }) as unknown as UnaryRequest;
  /** The code the observer recorded and the error the caller got, for a `next` that fails as given. */
  async function outcome(settleErrors: boolean, next: () => Promise<UnaryResponse>) {
    let recorded: RpcOutcome | undefined;
    const observe = observingInterceptor([() => ({ done: (o) => (recorded = o) })], "server", { settleErrors });
    const err = await observe(next as never)(request()).then(
      () => undefined,
      (e: unknown) => e,
    );
    return { recorded, err };
  }

  it("maps what errorsInterceptor maps, before the observers see it (rejected or thrown)", async () => {
    const bug = new Error("secret internals");
    for (const next of [() => Promise.reject(bug), () => { throw bug; }]) {
      const { recorded, err } = await outcome(true, next);
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.Internal);
      expect((err as ConnectError).rawMessage).toBe("internal error");
      expect((err as ConnectError).cause).toBe(bug);
      expect(recorded?.code).toBe("Internal");
      expect(recorded?.error).toBe(err);
    }
    const outage = Object.assign(new Error("refused"), { code: "ECONNREFUSED" });
    expect((await outcome(true, () => Promise.reject(outage))).recorded?.code).toBe("Unavailable");
    const own = new ConnectError("gone", Code.NotFound);
    expect(await outcome(true, () => Promise.reject(own))).toMatchObject({ err: own, recorded: { code: "NotFound", error: own } });
    // Without the option the error passes as it is (errorsInterceptor maps it further in).
    expect((await outcome(false, () => Promise.reject(bug))).err).toBe(bug);
  });

  it("gives the same as errorsInterceptor right inside the observer", async () => {
    const bug = new Error("secret internals");
    let recorded: RpcOutcome | undefined;
    const observe = observingInterceptor([() => ({ done: (o) => (recorded = o) })]);
    const err = await observe(errorsInterceptor()((() => Promise.reject(bug)) as never) as never)(request()).catch((e: unknown) => e);
    const fused = await outcome(true, () => Promise.reject(bug));
    expect(fused.recorded?.code).toBe(recorded?.code);
    expect(String(fused.err)).toBe(String(err));
  });
});
