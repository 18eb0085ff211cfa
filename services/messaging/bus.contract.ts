import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { eventually } from "../../test/support/eventually.js";
import type { Consumer, IncomingMessage, MessageBus, OutgoingMessage } from "./port.js";

/** What a contract run needs from an adapter. */
export interface BusFixture {
  bus: MessageBus;
  /** Ids of the messages dead-lettered for consumer `name` so far, oldest first. */
  deadLetters(name: string): Promise<string[]>;
  /** Removes what the test left behind (e.g. the queues of these consumer names). */
  dispose(names: string[]): Promise<void>;
}

export { eventually };

export function message(routingKey: string, overrides: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return {
    routingKey,
    messageId: randomUUID(),
    type: "myevents.v1.EventCreated",
    body: new Uint8Array([8, 1, 18, 3, 97, 98, 99]),
    timestamp: new Date(),
    ...overrides,
  };
}

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

export function describeMessageBusContract(adapter: string, open: () => Promise<BusFixture>) {
  describe(`MessageBus contract: ${adapter}`, () => {
    let fx: BusFixture;
    let names: string[];
    // Consumer names and routing keys unique to the test, so runs (and other users
    // of the shared "myevents" exchange) never see each other's messages.
    const unique = (prefix: string) => {
      const name = `test-${prefix}-${randomUUID().slice(0, 8)}`;
      names.push(name);
      return name;
    };
    const topic = () => `test.${randomUUID().slice(0, 8)}`;
    const ids = (messages: IncomingMessage[]) => messages.map((m) => m.messageId);

    /** A consumer that records what it receives. */
    async function recorder(name: string, routingKeys: string[]) {
      const received: IncomingMessage[] = [];
      const consumer = await fx.bus.consume({ name, routingKeys, handle: async (m) => void received.push(m) });
      return { received, consumer };
    }

    beforeEach(async () => {
      names = [];
      fx = await open();
    });
    afterEach(async () => {
      await fx.bus.close();
      await fx.dispose(names);
    });

    it("delivers a published message with every property intact", async () => {
      const key = `${topic()}.created`;
      const { received } = await recorder(unique("props"), [key]);
      const full = message(key, {
        body: new Uint8Array([0, 1, 2, 127, 128, 250, 255]),
        timestamp: new Date("2026-03-04T05:06:07.891Z"),
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      });
      const bare = message(key, { type: "myevents.v1.EventCancelled", body: new Uint8Array() });
      await fx.bus.publish([]);
      await fx.bus.publish([full, bare]);

      await eventually(() => expect(received).toHaveLength(2));
      const [gotFull, gotBare] = received;
      expect(gotFull).toEqual({ ...full, timestamp: new Date("2026-03-04T05:06:07.000Z"), deliveryCount: 1 });
      expect(gotFull!.body).toBeInstanceOf(Uint8Array);
      expect([...gotFull!.body]).toEqual([0, 1, 2, 127, 128, 250, 255]);
      expect(gotBare).toEqual({ ...bare, timestamp: new Date(Math.floor(bare.timestamp.getTime() / 1000) * 1000), deliveryCount: 1 });
      expect(gotBare!.traceparent).toBeUndefined();
      expect(gotBare!.body.byteLength).toBe(0);
    });

    it("routes by key: exact, * and # bindings; nothing reaches consumers of other keys", async () => {
      const t = topic();
      const end = `${t}.end`; // bound by every consumer; arrives last, after anything routed earlier
      const exact = await recorder(unique("exact"), [`${t}.created`, end]);
      const star = await recorder(unique("star"), [`${t}.*`]);
      const hash = await recorder(unique("hash"), [`${t}.#`]);
      const other = await recorder(unique("other"), [`${t}.cancelled`, end]);
      const created = message(`${t}.created`);
      const deep = message(`${t}.created.again`);
      const last = message(end);
      await fx.bus.publish([created, deep, last]);

      await eventually(() => {
        for (const c of [exact, star, hash, other]) expect(ids(c.received)).toContain(last.messageId);
      });
      expect(ids(exact.received)).toEqual([created.messageId, last.messageId]);
      expect(ids(star.received)).toEqual([created.messageId, last.messageId]);
      expect(ids(hash.received)).toEqual([created.messageId, deep.messageId, last.messageId]);
      expect(ids(other.received)).toEqual([last.messageId]);
    });

    it("gives every consumer name its own copy", async () => {
      const key = `${topic()}.created`;
      const a = await recorder(unique("a"), [key]);
      const b = await recorder(unique("b"), [key]);
      const m = message(key);
      await fx.bus.publish([m]);
      await eventually(() => {
        expect(ids(a.received)).toEqual([m.messageId]);
        expect(ids(b.received)).toEqual([m.messageId]);
      });
    });

    it("shares one queue between consumers of the same name (competing consumers)", async () => {
      const key = `${topic()}.created`;
      const name = unique("shared");
      const seen: string[][] = [[], []];
      for (const worker of seen) {
        await fx.bus.consume({
          name,
          routingKeys: [key],
          prefetch: 1,
          handle: async (m) => {
            worker.push(m.messageId);
            await sleep(10);
          },
        });
      }
      const batch = Array.from({ length: 10 }, () => message(key));
      await fx.bus.publish(batch);
      await eventually(() => expect(seen.flat().sort()).toEqual(batch.map((m) => m.messageId).sort()));
      expect(seen[0]!.length).toBeGreaterThan(0);
      expect(seen[1]!.length).toBeGreaterThan(0);
    });

    it("redelivers after a failure with a higher deliveryCount", async () => {
      const key = `${topic()}.created`;
      const name = unique("retry");
      const counts: number[] = [];
      let done = false;
      await fx.bus.consume({
        name,
        routingKeys: [key],
        maxDeliveries: 5,
        handle: async (m) => {
          counts.push(m.deliveryCount);
          if (m.deliveryCount < 3) throw new Error("transient");
          done = true;
        },
      });
      await fx.bus.publish([message(key)]);
      await eventually(() => expect(done).toBe(true));
      expect(counts).toEqual([1, 2, 3]);
      expect(await fx.deadLetters(name)).toEqual([]);
    });

    it.each([1, 3])("gives up after exactly maxDeliveries = %i attempts, dead-letters, keeps going", async (maxDeliveries) => {
      const key = `${topic()}.created`;
      const name = unique(`poison${maxDeliveries}`);
      const poison = message(key);
      const attempts: number[] = [];
      const handled: string[] = [];
      await fx.bus.consume({
        name,
        routingKeys: [key],
        maxDeliveries,
        handle: async (m) => {
          if (m.messageId !== poison.messageId) return void handled.push(m.messageId);
          attempts.push(m.deliveryCount);
          throw new Error("always fails");
        },
      });
      await fx.bus.publish([poison]);
      await eventually(async () => expect(await fx.deadLetters(name)).toEqual([poison.messageId]));
      const expected = Array.from({ length: maxDeliveries }, (_, i) => i + 1);
      expect(attempts).toEqual(expected);

      const later = message(key);
      await fx.bus.publish([later]);
      await eventually(() => expect(handled).toEqual([later.messageId]));
      expect(attempts).toEqual(expected);
    });

    it("keeps each consumer's dead letters in its own DLQ", async () => {
      const t = topic();
      const a = unique("dla");
      const b = unique("dlb");
      const fail = async () => {
        throw new Error("fails");
      };
      await fx.bus.consume({ name: a, routingKeys: [`${t}.a`], maxDeliveries: 1, handle: fail });
      await fx.bus.consume({ name: b, routingKeys: [`${t}.b`], maxDeliveries: 1, handle: fail });
      const ma = message(`${t}.a`);
      const mb = message(`${t}.b`);
      await fx.bus.publish([ma, mb]);
      const dead = new Map<string, string[]>([[a, []], [b, []]]);
      await eventually(async () => {
        for (const [name, list] of dead) list.push(...(await fx.deadLetters(name)));
        expect(Object.fromEntries(dead)).toEqual({ [a]: [ma.messageId], [b]: [mb.messageId] });
      });
    });

    it("dead-letters a malformed message at once, without calling the handler", async () => {
      const key = `${topic()}.created`;
      const name = unique("malformed");
      const { received } = await recorder(name, [key]);
      const malformed = message(key, { type: "" });
      const fine = message(key);
      await fx.bus.publish([malformed, fine]);
      await eventually(() => expect(ids(received)).toEqual([fine.messageId]));
      await eventually(async () => expect(await fx.deadLetters(name)).toEqual([malformed.messageId]));
    });

    it("runs at most `prefetch` handlers at once", async () => {
      const key = `${topic()}.created`;
      let active = 0;
      let peak = 0;
      let done = 0;
      await fx.bus.consume({
        name: unique("prefetch"),
        routingKeys: [key],
        prefetch: 2,
        handle: async () => {
          peak = Math.max(peak, ++active);
          await sleep(30);
          active--;
          done++;
        },
      });
      await fx.bus.publish(Array.from({ length: 6 }, () => message(key)));
      await eventually(() => expect(done).toBe(6));
      expect(peak).toBe(2);
    });

    it("stop() waits for in-flight handlers, acknowledges their messages, and the queue keeps later ones", async () => {
      const key = `${topic()}.created`;
      const name = unique("stop");
      const release = gate();
      let started = false;
      let finished = false;
      const consumer: Consumer = await fx.bus.consume({
        name,
        routingKeys: [key],
        handle: async () => {
          started = true;
          await release.opened;
          await sleep(10);
          finished = true;
        },
      });
      await fx.bus.publish([message(key)]);
      await eventually(() => expect(started).toBe(true));

      let stopped = false;
      const stopping = consumer.stop().then(() => (stopped = true));
      await sleep(100);
      expect(stopped).toBe(false);
      release.open();
      await stopping;
      expect(finished).toBe(true);

      // Published while nobody consumes: the queue keeps it. The first message was acked, so it is not redelivered.
      const whileStopped = message(key);
      await fx.bus.publish([whileStopped]);
      const next = await recorder(name, [key]);
      await eventually(() => expect(ids(next.received)).toEqual([whileStopped.messageId]));
      await sleep(100);
      expect(ids(next.received)).toEqual([whileStopped.messageId]);
    });

    it("rejects a consumer whose maxDeliveries differs from its existing queue; the bus keeps working", async () => {
      const key = `${topic()}.created`;
      const name = unique("mismatch");
      const { received } = await recorder(name, [key]);
      await expect(
        fx.bus.consume({ name, routingKeys: [key], maxDeliveries: 9, handle: async () => {} }),
      ).rejects.toThrow();
      const m = message(key);
      await fx.bus.publish([m]);
      await eventually(() => expect(ids(received)).toEqual([m.messageId]));
    });

    it("answers ping while open; after close() ping, publish, consume and broadcast reject", async () => {
      await fx.bus.ping();
      await fx.bus.close();
      await expect(fx.bus.ping()).rejects.toThrow();
      await expect(fx.bus.publish([message(`${topic()}.x`)])).rejects.toThrow();
      await expect(fx.bus.consume({ name: unique("closed"), routingKeys: ["x"], handle: async () => {} })).rejects.toThrow();
      await expect(fx.bus.broadcast({ name: "closed", routingKeys: ["x"], handle: () => {} })).rejects.toThrow();
    });

    describe("broadcast subscriptions", () => {
      /** A broadcast subscription that records what it receives. */
      async function listener(routingKeys: string[], name = "test-listener") {
        const received: IncomingMessage[] = [];
        const subscription = await fx.bus.broadcast({ name, routingKeys, handle: (m) => void received.push(m) });
        return { received, subscription };
      }

      it("gives every subscription its own copy of every matching message, in publish order, beside work queues", async () => {
        const t = topic();
        // The same name twice: unlike consume(), broadcast never shares a queue.
        const a = await listener([`${t}.*`], "test-same");
        const b = await listener([`${t}.*`], "test-same");
        const work = await recorder(unique("work"), [`${t}.*`]);
        expect(a.subscription.active).toBe(true);
        const batch = Array.from({ length: 20 }, (_, i) => message(i % 2 ? `${t}.created` : `${t}.cancelled`));
        await fx.bus.publish(batch);
        const expected = batch.map((m) => m.messageId);
        await eventually(() => {
          expect(ids(a.received)).toEqual(expected);
          expect(ids(b.received)).toEqual(expected);
          expect(ids(work.received).sort()).toEqual([...expected].sort());
        });
        expect(a.received[0]).toMatchObject({ routingKey: batch[0]!.routingKey, type: batch[0]!.type, deliveryCount: 1 });
        expect([...a.received[0]!.body]).toEqual([...batch[0]!.body]);
      });

      it("routes by key: exact, * and #", async () => {
        const t = topic();
        const end = `${t}.end`;
        const exact = await listener([`${t}.created`, end]);
        const star = await listener([`${t}.*`]);
        const hash = await listener([`${t}.#`]);
        const [created, deep, last] = [message(`${t}.created`), message(`${t}.created.again`), message(end)];
        await fx.bus.publish([created, deep, last]);
        await eventually(() => {
          for (const l of [exact, star, hash]) expect(ids(l.received)).toContain(last.messageId);
        });
        expect(ids(exact.received)).toEqual([created.messageId, last.messageId]);
        expect(ids(star.received)).toEqual([created.messageId, last.messageId]);
        expect(ids(hash.received)).toEqual([created.messageId, deep.messageId, last.messageId]);
      });

      it("keeps nothing from before it subscribed or after it stopped", async () => {
        const key = `${topic()}.created`;
        const before = message(key);
        await fx.bus.publish([before]);
        const early = await listener([key]);
        const during = message(key);
        await fx.bus.publish([during]);
        await eventually(() => expect(ids(early.received)).toEqual([during.messageId]));
        await early.subscription.stop();
        expect(early.subscription.active).toBe(false);

        const witness = await listener([key]);
        const after = message(key);
        await fx.bus.publish([after]);
        await eventually(() => expect(ids(witness.received)).toEqual([after.messageId]));
        await sleep(50);
        expect(ids(early.received)).toEqual([during.messageId]);
      });

      it("drops a message whose handler fails (no redelivery, no dead letter) and goes on", async () => {
        const key = `${topic()}.created`;
        const calls: string[] = [];
        const [bad, good] = [message(key), message(key)];
        await fx.bus.broadcast({
          name: "test-failing",
          routingKeys: [key],
          handle: async (m) => {
            calls.push(m.messageId);
            if (m.messageId === bad.messageId) throw new Error("fails");
          },
        });
        await fx.bus.publish([bad, good]);
        await eventually(() => expect(calls).toEqual([bad.messageId, good.messageId]));
        await sleep(100);
        expect(calls).toEqual([bad.messageId, good.messageId]);
      });

      it("stop() waits for in-flight handlers", async () => {
        const key = `${topic()}.created`;
        const release = gate();
        let started = false;
        let finished = false;
        const subscription = await fx.bus.broadcast({
          name: "test-stop",
          routingKeys: [key],
          handle: async () => {
            started = true;
            await release.opened;
            finished = true;
          },
        });
        await fx.bus.publish([message(key)]);
        await eventually(() => expect(started).toBe(true));
        let stopped = false;
        const stopping = subscription.stop().then(() => (stopped = true));
        await sleep(50);
        expect(stopped).toBe(false);
        release.open();
        await stopping;
        expect(finished).toBe(true);
      });
    });
  });
}
