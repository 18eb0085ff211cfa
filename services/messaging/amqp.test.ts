import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "amqplib";
import type { ChannelModel } from "amqplib";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  AmqpMessageBus,
  DEAD_LETTER_EXCHANGE,
  backoffMs,
  broadcastQueueArguments,
  deadLetterQueueName,
  queueArguments,
  queueName,
  redactUrl,
} from "./amqp.js";
import type { BusLogger } from "./amqp.js";
import { describeMessageBusContract, eventually, message } from "./bus.contract.js";
import type { BroadcastSubscription, IncomingMessage } from "./port.js";
import { EXCHANGE } from "./port.js";
import { startTcpProxy } from "./tcp-proxy.js";
import { amqpUrl } from "../../test/support/backing.js";

const AMQP_URL = amqpUrl();
const target = new URL(AMQP_URL);

/** Collects log lines instead of printing them. */
function testLogger() {
  const lines: Array<{ level: string; msg: string; fields?: Record<string, unknown> }> = [];
  const logger: BusLogger = {
    info: (msg, fields) => void lines.push({ level: "info", msg, ...(fields && { fields }) }),
    warn: (msg, fields) => void lines.push({ level: "warn", msg, ...(fields && { fields }) }),
    error: (msg, fields) => void lines.push({ level: "error", msg, ...(fields && { fields }) }),
  };
  return { logger, lines };
}

const fast = { minBackoffMs: 50, maxBackoffMs: 400 };

/** A raw connection for inspecting and cleaning up queues. */
async function admin() {
  const model = await connect(AMQP_URL);
  model.on("error", () => {});
  return model;
}

async function deleteQueues(model: ChannelModel, names: string[]) {
  const channel = await model.createChannel();
  for (const name of names) {
    await channel.deleteQueue(queueName(name));
    await channel.deleteQueue(deadLetterQueueName(name));
  }
  await channel.close();
}

/** Reads (and removes) what is in a DLQ with a raw channel. */
async function drainDlq(model: ChannelModel, name: string) {
  const channel = await model.createChannel();
  const ids: string[] = [];
  for (;;) {
    const got = await channel.get(deadLetterQueueName(name), { noAck: true });
    if (!got) break;
    ids.push(got.properties.messageId as string);
  }
  await channel.close();
  return ids;
}

describeMessageBusContract("amqp", async () => {
  const bus = new AmqpMessageBus(AMQP_URL, testLogger().logger, fast);
  await bus.whenConnected(5000);
  const raw = await admin();
  return {
    bus,
    deadLetters: (name) => drainDlq(raw, name),
    dispose: async (names) => {
      await deleteQueues(raw, names);
      await raw.close();
    },
  };
});

describe("AmqpMessageBus", () => {
  let raw: ChannelModel;
  let names: string[] = [];
  const unique = (prefix: string) => {
    const name = `test-${prefix}-${randomUUID().slice(0, 8)}`;
    names.push(name);
    return name;
  };
  const topic = () => `test.${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    raw = await admin();
  });
  afterEach(async () => {
    await deleteQueues(raw, names);
    names = [];
  });
  afterAll(async () => {
    await raw.close();
  });

  it("declares the documented topology", async () => {
    const { logger } = testLogger();
    const bus = new AmqpMessageBus(AMQP_URL, logger, fast);
    const name = unique("topology");
    await bus.consume({ name, routingKeys: ["x.y"], maxDeliveries: 4, handle: async () => {} });
    await bus.close();

    const channel = await raw.createChannel();
    await channel.checkExchange(EXCHANGE);
    await channel.checkExchange(DEAD_LETTER_EXCHANGE);
    // Redeclaring succeeds only when type and arguments are exactly equal.
    await channel.assertExchange(EXCHANGE, "topic", { durable: true });
    await channel.assertExchange(DEAD_LETTER_EXCHANGE, "direct", { durable: true });
    await channel.assertQueue(queueName(name), { durable: true, arguments: queueArguments(name, 4) });
    await channel.assertQueue(deadLetterQueueName(name), { durable: true, arguments: { "x-queue-type": "quorum" } });
    expect(queueArguments(name, 4)).toMatchObject({
      "x-queue-type": "quorum",
      "x-delivery-limit": 3,
      "x-dead-letter-exchange": "myevents.dlx",
      "x-dead-letter-routing-key": name,
    });
    channel.on("error", () => {});
    await expect(
      channel.assertQueue(queueName(name), { durable: true, arguments: { ...queueArguments(name, 4), "x-delivery-limit": 9 } }),
    ).rejects.toThrow(/PRECONDITION_FAILED/);
  });

  it("sets the AMQP properties other clients rely on", async () => {
    const { logger } = testLogger();
    const bus = new AmqpMessageBus(AMQP_URL, logger, fast);
    await bus.whenConnected(5000);
    const name = unique("props");
    const key = `${topic()}.created`;
    // Declare the queue by consuming once, then read it raw.
    const consumer = await bus.consume({ name, routingKeys: [key], handle: async () => {} });
    await consumer.stop();
    const m = message(key, { timestamp: new Date("2026-01-02T03:04:05.678Z"), traceparent: "00-aa-bb-01" });
    await bus.publish([m]);
    await bus.close();
    const channel = await raw.createChannel();
    const got = await channel.get(queueName(name), { noAck: true });
    await channel.close();
    expect(got && got.properties).toMatchObject({
      messageId: m.messageId,
      type: m.type,
      contentType: "application/protobuf",
      deliveryMode: 2,
      timestamp: Date.parse("2026-01-02T03:04:05Z") / 1000,
      headers: { traceparent: "00-aa-bb-01" },
    });
  });

  it("rejects publish when the broker nacks a message", async () => {
    const { logger } = testLogger();
    const bus = new AmqpMessageBus(AMQP_URL, logger, fast);
    const key = `${topic()}.full`;
    const full = `test-full-${randomUUID().slice(0, 8)}`;
    const channel = await raw.createChannel();
    try {
      await bus.whenConnected(5000);
      // A queue that refuses everything: the broker nacks what is routed to it.
      await channel.assertQueue(full, { arguments: { "x-max-length": 0, "x-overflow": "reject-publish" } });
      await channel.bindQueue(full, EXCHANGE, key);
      await expect(bus.publish([message(`${topic()}.elsewhere`), message(key)])).rejects.toThrow(/did not confirm/);
      await bus.publish([message(`${topic()}.elsewhere`)]); // the channel is still usable
    } finally {
      await channel.deleteQueue(full);
      await channel.close();
      await bus.close();
    }
  });

  it("publishes a batch larger than the channel's write buffer (waits for drain) without losing any", async () => {
    const { logger } = testLogger();
    const bus = new AmqpMessageBus(AMQP_URL, logger, fast);
    try {
      await bus.whenConnected(5000);
      const key = `${topic()}.bulk`;
      const seen = new Set<string>();
      await bus.consume({ name: unique("bulk"), routingKeys: [key], prefetch: 500, handle: async (m) => void seen.add(m.messageId) });
      // amqplib buffers 1024 frames per channel before publish() returns false.
      const batch = Array.from({ length: 5000 }, () => message(key));
      await bus.publish(batch);
      await eventually(() => expect(seen.size).toBe(batch.length), 15_000);
    } finally {
      await bus.close();
    }
  });

  it("restarts a consumer whose queue is deleted under it, on the same connection", async () => {
    const { logger, lines } = testLogger();
    const bus = new AmqpMessageBus(AMQP_URL, logger, fast);
    try {
      await bus.whenConnected(5000);
      const key = `${topic()}.created`;
      const name = unique("deleted");
      const received: string[] = [];
      await bus.consume({ name, routingKeys: [key], handle: async (m) => void received.push(m.messageId) });
      const channel = await raw.createChannel();
      await channel.deleteQueue(queueName(name));
      await channel.close();
      await eventually(() => expect(lines.map((l) => l.msg)).toContain("amqp: consumer cancelled by the broker"));
      const m = message(key);
      // The queue comes back once the consumer has restarted; publish until it receives.
      await eventually(async () => {
        await bus.publish([m]);
        expect(received).toContain(m.messageId);
      });
      await bus.ping();
    } finally {
      await bus.close();
    }
  });

  it("survives losing the connection: fails fast while down, then reconnects and resumes consuming", async () => {
    const proxy = await startTcpProxy(target.hostname, Number(target.port || 5672));
    const { logger, lines } = testLogger();
    const viaProxy = new URL(AMQP_URL);
    viaProxy.hostname = "127.0.0.1";
    viaProxy.port = String(proxy.port);
    const bus = new AmqpMessageBus(viaProxy.toString(), logger, fast);
    try {
      await bus.whenConnected(5000);
      const key = `${topic()}.created`;
      const received: IncomingMessage[] = [];
      let blocking = true;
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      await bus.consume({
        name: unique("reconnect"),
        routingKeys: [key],
        prefetch: 1,
        handle: async (m) => {
          received.push(m);
          if (blocking && received.length === 2) await released; // in flight when the connection drops
        },
      });
      const [first, inFlight, queued] = [message(key), message(key), message(key)];
      await bus.publish([first, inFlight, queued]);
      await eventually(() => expect(received.map((m) => m.messageId)).toEqual([first.messageId, inFlight.messageId]));

      proxy.cut();
      await eventually(() => expect(bus.ping()).rejects.toThrow(/not connected/), 2000);
      const started = Date.now();
      await expect(bus.publish([message(key)])).rejects.toThrow(/not connected/);
      expect(Date.now() - started).toBeLessThan(100);
      blocking = false;
      release(); // its ack goes nowhere: the broker requeued the message when the connection dropped

      await sleep(300); // a few failed reconnect attempts
      expect(lines.some((l) => l.msg.includes("cannot connect"))).toBe(true);
      proxy.restore();
      await bus.whenConnected(5000);
      await bus.ping();
      const after = message(key);
      await bus.publish([after]);

      await eventually(() =>
        expect(received.map((m) => m.messageId)).toEqual([
          first.messageId,
          inFlight.messageId,
          inFlight.messageId, // redelivered: it was never acknowledged
          queued.messageId,
          after.messageId,
        ]),
      );
      expect(received[2]!.deliveryCount).toBe(2);
      expect(received[3]!.deliveryCount).toBe(1);
    } finally {
      await bus.close();
      await proxy.close();
    }
  });

  it("starts while the broker is unreachable and connects when it comes up", async () => {
    const proxy = await startTcpProxy(target.hostname, Number(target.port || 5672));
    proxy.cut();
    const { logger } = testLogger();
    const bus = new AmqpMessageBus(`amqp://guest:guest@127.0.0.1:${proxy.port}`, logger, fast);
    try {
      await expect(bus.ping()).rejects.toThrow();
      const key = `${topic()}.created`;
      const received: string[] = [];
      await bus.consume({ name: unique("late"), routingKeys: [key], handle: async (m) => void received.push(m.messageId) });
      await expect(bus.whenConnected(200)).rejects.toThrow(/timed out/);
      proxy.restore();
      await bus.whenConnected(5000);
      const m = message(key);
      await bus.publish([m]);
      await eventually(() => expect(received).toEqual([m.messageId]));
    } finally {
      await bus.close();
      await proxy.close();
    }
  });

  it("stops reconnecting after close()", async () => {
    const proxy = await startTcpProxy(target.hostname, Number(target.port || 5672));
    const { logger } = testLogger();
    const bus = new AmqpMessageBus(`amqp://guest:guest@127.0.0.1:${proxy.port}`, logger, fast);
    try {
      await bus.whenConnected(5000);
      proxy.cut();
      await sleep(100);
      await bus.close();
      proxy.restore();
      const accepted = proxy.accepted;
      await sleep(fast.maxBackoffMs * 2);
      expect(proxy.accepted).toBe(accepted);
      await expect(bus.whenConnected()).rejects.toThrow(/closed/);
    } finally {
      await proxy.close();
    }
  });

  it("broadcast: declares an exclusive, auto-delete classic queue per subscription, gone when it stops", async () => {
    const { logger } = testLogger();
    const bus = new AmqpMessageBus(AMQP_URL, logger, fast);
    const channel = await raw.createChannel();
    channel.on("error", () => {});
    try {
      await bus.whenConnected(5000);
      const key = `${topic()}.created`;
      const subscription = (await bus.broadcast({ name: "test-exclusive", routingKeys: [key], handle: () => {} })) as BroadcastSubscription & { queue?: string };
      const queue = subscription.queue!;
      expect(queue).toMatch(/^myevents\.test-exclusive\.[0-9a-f]{12}$/);
      // Exclusive: another connection may not even look at it.
      await expect(channel.checkQueue(queue)).rejects.toThrow(/RESOURCE_LOCKED/);
      await subscription.stop();
      const fresh = await raw.createChannel();
      fresh.on("error", () => {});
      await expect(fresh.checkQueue(queue)).rejects.toThrow(/NOT_FOUND/);
      expect(broadcastQueueArguments()).toEqual({ "x-queue-type": "classic", "x-max-length": 10_000 });
    } finally {
      await bus.close();
    }
  });

  it("broadcast: survives losing the connection with a fresh queue, reporting the gap", async () => {
    const proxy = await startTcpProxy(target.hostname, Number(target.port || 5672));
    const { logger } = testLogger();
    const viaProxy = new URL(AMQP_URL);
    viaProxy.hostname = "127.0.0.1";
    viaProxy.port = String(proxy.port);
    const bus = new AmqpMessageBus(viaProxy.toString(), logger, fast);
    const publisher = new AmqpMessageBus(AMQP_URL, logger, fast); // not through the proxy
    try {
      await Promise.all([bus.whenConnected(5000), publisher.whenConnected(5000)]);
      const key = `${topic()}.created`;
      const received: string[] = [];
      const changes: boolean[] = [];
      const subscription = (await bus.broadcast({
        name: "test-reconnect",
        routingKeys: [key],
        handle: (m) => void received.push(m.messageId),
        onActiveChange: (active) => changes.push(active),
      })) as BroadcastSubscription & { queue?: string };
      const firstQueue = subscription.queue;
      const before = message(key);
      await publisher.publish([before]);
      await eventually(() => expect(received).toEqual([before.messageId]));
      expect(changes).toEqual([true]);

      proxy.cut();
      await eventually(() => expect(subscription.active).toBe(false), 3000);
      expect(changes).toEqual([true, false]);
      const missed = message(key);
      await publisher.publish([missed]); // nobody listens for this subscription now

      proxy.restore();
      await eventually(() => expect(subscription.active).toBe(true), 5000);
      expect(changes).toEqual([true, false, true]);
      expect(subscription.queue).not.toBe(firstQueue);
      const after = message(key);
      await publisher.publish([after]);
      await eventually(() => expect(received).toEqual([before.messageId, after.messageId]));
    } finally {
      await bus.close();
      await publisher.close();
      await proxy.close();
    }
  });

  it("redacts the password from URLs in logs", () => {
    expect(redactUrl("amqp://user:s3cret@broker:5672/vhost")).toBe("amqp://user:***@broker:5672/vhost");
    expect(redactUrl("amqp://broker")).toBe("amqp://broker");
    expect(redactUrl("not a url")).toBe("<unparsable AMQP URL>");
  });

  it("backs off exponentially with jitter, capped", () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const ceiling = Math.min(5000, 100 * 2 ** attempt);
      const delay = backoffMs(attempt, 100, 5000);
      expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
      expect(delay).toBeLessThanOrEqual(ceiling);
    }
  });
});
