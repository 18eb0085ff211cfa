import { once } from "node:events";
import net from "node:net";
import { describe, expect, it } from "vitest";
import { isUnavailable } from "./errors.js";

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
