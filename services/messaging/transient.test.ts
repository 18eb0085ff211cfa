import { describe, expect, it } from "vitest";
import type { IncomingMessage } from "./port.js";
import { retryWhileUnavailable } from "./transient.js";

const message: IncomingMessage = { routingKey: "booking.confirmed", messageId: "m1", type: "t", body: new Uint8Array(), timestamp: new Date(), deliveryCount: 1 };
const outage = () => Object.assign(new Error("connection closed"), { name: "MongoNetworkError" });
const isTransient = (err: unknown) => err instanceof Error && err.name === "MongoNetworkError";

describe("retryWhileUnavailable", () => {
  it("waits out a dependency outage instead of failing the delivery (which would dead-letter it)", async () => {
    let calls = 0;
    const retries: number[] = [];
    const handle = retryWhileUnavailable(
      async () => {
        if (++calls < 4) throw outage();
      },
      { isTransient, stopping: () => false, minDelayMs: 1, maxDelayMs: 4, onRetry: (_e, attempt) => retries.push(attempt) },
    );
    await handle(message);
    expect(calls).toBe(4);
    expect(retries).toEqual([1, 2, 3]);
  });

  it("fails at once for an error of the message itself, so it counts towards the redelivery limit", async () => {
    let calls = 0;
    const handle = retryWhileUnavailable(
      async () => {
        calls++;
        throw new Error("undecodable");
      },
      { isTransient, stopping: () => false, minDelayMs: 1 },
    );
    await expect(handle(message)).rejects.toThrow("undecodable");
    expect(calls).toBe(1);
  });

  it("gives the message back once the consumer is stopping", async () => {
    let stopping = false;
    let calls = 0;
    const handle = retryWhileUnavailable(
      async () => {
        if (++calls === 3) stopping = true;
        throw outage();
      },
      { isTransient, stopping: () => stopping, minDelayMs: 1 },
    );
    await expect(handle(message)).rejects.toThrow("connection closed");
    expect(calls).toBe(3);
  });
});
