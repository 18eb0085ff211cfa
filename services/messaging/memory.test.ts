import { describe, expect, it } from "vitest";
import { describeMessageBusContract } from "./bus.contract.js";
import { MemoryMessageBus, topicMatches } from "./memory.js";

describeMessageBusContract("memory", async () => {
  const bus = new MemoryMessageBus();
  return {
    bus,
    deadLetters: async (name) => bus.deadLetters(name).map((m) => m.messageId),
    dispose: async () => {},
  };
});

describe("MemoryMessageBus", () => {
  it("never calls a handler inside publish()", async () => {
    const bus = new MemoryMessageBus();
    let calls = 0;
    await bus.consume({ name: "sync", routingKeys: ["a.b"], handle: async () => void calls++ });
    const publishing = bus.publish([
      { routingKey: "a.b", messageId: "1", type: "t", body: new Uint8Array(), timestamp: new Date() },
    ]);
    expect(calls).toBe(0);
    await publishing;
    await bus.close();
  });

  it("matches topics like RabbitMQ", () => {
    expect(topicMatches("a.b", "a.b")).toBe(true);
    expect(topicMatches("a.b", "a.b.c")).toBe(false);
    expect(topicMatches("a.*", "a.b")).toBe(true);
    expect(topicMatches("a.*", "a")).toBe(false);
    expect(topicMatches("a.*", "a.b.c")).toBe(false);
    expect(topicMatches("a.#", "a")).toBe(true);
    expect(topicMatches("a.#", "a.b.c")).toBe(true);
    expect(topicMatches("#", "anything.at.all")).toBe(true);
    expect(topicMatches("*.b.#", "x.b")).toBe(true);
    expect(topicMatches("#.c", "a.b.c")).toBe(true);
    expect(topicMatches("#.c", "a.b.d")).toBe(false);
  });
});
