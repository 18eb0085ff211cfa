import { MongoClient, type Collection, type Db } from "mongodb";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { mongodbUrl, uniqueDatabaseName } from "../../test/support/backing.js";
import type { IncomingMessage, OutgoingMessage, Publisher } from "../messaging/port.js";
import { createLogger } from "../runtime/logger.js";
import { MemoryOutbox } from "./memory.js";
import { ensureOutboxIndex, mongoOutboxSource, toStoredEntry, type OutboxDocument } from "./mongo.js";
import type { OutboxEntry, OutboxSource } from "./outbox.js";
import { MemoryProcessedMessages, idempotent } from "./processed.js";
import { OutboxRelay, type OutboxRelayOptions } from "./relay.js";
import { entryAt } from "./source.contract.js";

/** Records what it publishes; can be made to fail (broker down) or to hold a call open. */
class FakePublisher implements Publisher {
  published: OutgoingMessage[] = [];
  calls = 0;
  failing = false;
  gate?: Promise<void>;

  async publish(messages: OutgoingMessage[]): Promise<void> {
    this.calls++;
    if (this.gate) await this.gate;
    if (this.failing) throw new Error("broker unavailable");
    this.published.push(...messages);
  }

  ids(): string[] {
    return this.published.map((m) => m.messageId).sort();
  }
}

let client: MongoClient;
let db: Db;
let n = 0;
beforeAll(async () => {
  client = await MongoClient.connect(mongodbUrl(), { serverSelectionTimeoutMS: 2_000 });
  db = client.db(uniqueDatabaseName("outbox_relay"));
});
afterAll(async () => {
  await db?.dropDatabase();
  await client?.close();
});

async function collection(): Promise<Collection<OutboxDocument>> {
  const docs = db.collection<OutboxDocument>(`docs_${++n}`);
  await ensureOutboxIndex(docs);
  return docs;
}

/** A repository's write: the entry goes into the document by the same update. */
async function write(docs: Collection<OutboxDocument>, docId: string, entry: OutboxEntry) {
  await docs.updateOne({ _id: docId }, { $push: { outbox: toStoredEntry(entry) } }, { upsert: true });
}

function setup(sources: OutboxSource[], options: OutboxRelayOptions = {}) {
  const publisher = new FakePublisher();
  const logs: { level: string; msg: string }[] = [];
  const logger = createLogger("debug", {}, (line) => logs.push(JSON.parse(line)));
  const registry = new Registry();
  const relay = new OutboxRelay(sources, publisher, logger, { pollIntervalMs: 10, registry, ...options });
  const metric = async (name: string, source?: string) =>
    (await registry.getSingleMetric(name)!.get()).values.find((v) => source === undefined || v.labels.source === source)?.value;
  return { publisher, logs, relay, metric };
}

const sorted = (entries: OutboxEntry[]) => entries.map((e) => e.id).sort();

describe("OutboxRelay", () => {
  it("publishes every entry of every source exactly once, in batches", async () => {
    const memory = new MemoryOutbox("memory");
    const memEntries = Array.from({ length: 250 }, (_, i) => entryAt(i));
    memEntries.forEach((e, i) => memory.add(`doc-${i % 40}`, e));
    const docs = await collection();
    const mongoEntries = Array.from({ length: 30 }, (_, i) => entryAt(i + 0.5));
    for (const [i, e] of mongoEntries.entries()) await write(docs, `doc-${i % 7}`, e);

    const { publisher, relay, metric } = setup([memory, mongoOutboxSource(docs, "mongo")], { batchSize: 100 });
    relay.start();
    await relay.drained(10_000);
    await relay.stop();

    expect(publisher.ids()).toEqual(sorted([...memEntries, ...mongoEntries]));
    expect(publisher.calls).toBe(3); // 100+30, 100, 50: one publish per round, rounds back to back
    const first = publisher.published.find((m) => m.messageId === mongoEntries[0]!.id)!;
    expect(first).toEqual({
      routingKey: "booking.confirmed",
      messageId: mongoEntries[0]!.id,
      type: "myevents.v1.BookingConfirmed",
      body: mongoEntries[0]!.body,
      timestamp: mongoEntries[0]!.occurredAt,
    });
    expect(await metric("outbox_published_total", "memory")).toBe(250);
    expect(await metric("outbox_published_total", "mongo")).toBe(30);
    expect(await metric("outbox_pending_messages", "memory")).toBe(0);
    expect(await metric("outbox_pending_messages", "mongo")).toBe(0);
    expect(await metric("outbox_oldest_pending_age_seconds", "mongo")).toBe(0);
  });

  it("kick() publishes at once instead of after the poll interval, even during a round", async () => {
    const memory = new MemoryOutbox("memory");
    const { publisher, relay } = setup([memory], { pollIntervalMs: 60_000 });
    relay.start();
    await sleep(50); // now idle, waiting for a minute

    const [a, b] = [entryAt(1), entryAt(2)];
    let release!: () => void;
    publisher.gate = new Promise((r) => (release = r));
    memory.add("doc", a);
    relay.kick();
    await vi.waitFor(() => expect(publisher.calls).toBe(1));
    // Written while the round publishing `a` is in flight: its query missed `b`.
    memory.add("doc", b);
    relay.kick();
    release();
    await vi.waitFor(() => expect(publisher.ids()).toEqual(sorted([a, b])), { timeout: 1_000 });
    await relay.stop();
  });

  it("keeps entries while publishing fails, backs off, logs once, and publishes all after recovery", async () => {
    const memory = new MemoryOutbox("memory");
    const minuteAgo = Date.now() - 60_000;
    const entries = Array.from({ length: 5 }, (_, i) => entryAt(i, { occurredAt: new Date(minuteAgo + i) }));
    entries.forEach((e) => memory.add("doc", e));
    const { publisher, logs, relay, metric } = setup([memory], { batchSize: 2, pollIntervalMs: 5, maxBackoffMs: 40 });
    publisher.failing = true;
    relay.start();
    await vi.waitFor(() => expect(publisher.calls).toBeGreaterThanOrEqual(5), { timeout: 2_000 });

    expect(publisher.published).toEqual([]);
    expect((await memory.stats()).count).toBe(5);
    expect(await metric("outbox_publish_failures_total")).toBeGreaterThanOrEqual(5);
    // The gauges show the backlog during the outage (a full batch: from stats()).
    expect(await metric("outbox_pending_messages", "memory")).toBe(5);
    expect(await metric("outbox_oldest_pending_age_seconds", "memory")).toBeGreaterThanOrEqual(60);
    const errors = () => logs.filter((l) => l.level === "error");
    expect(errors()).toHaveLength(1);
    expect(errors()[0]!.msg).toMatch(/publishing failed/);

    publisher.failing = false;
    await relay.drained(2_000);
    await relay.stop();
    expect(publisher.ids()).toEqual(sorted(entries));
    expect(errors()).toHaveLength(1); // still one line for the whole outage
    expect(logs.filter((l) => l.msg === "outbox relay: recovered")).toHaveLength(1);
    expect(await metric("outbox_pending_messages", "memory")).toBe(0);
    expect(await metric("outbox_published_total", "memory")).toBe(5);
  });

  it("backs off exponentially up to maxBackoffMs, and kicks don't cut the back-off short", async () => {
    const memory = new MemoryOutbox("memory");
    memory.add("doc", entryAt(1));
    const { publisher, relay } = setup([memory], { pollIntervalMs: 20, maxBackoffMs: 80 });
    publisher.failing = true;
    relay.start();
    const kicker = setInterval(() => relay.kick(), 1);
    await sleep(500);
    clearInterval(kicker);
    await relay.stop();
    // Waits 20, 40, 80, 80, ...: about 8 attempts in 500 ms; without back-off or with
    // kicks honoured there would be hundreds.
    expect(publisher.calls).toBeGreaterThanOrEqual(4);
    expect(publisher.calls).toBeLessThanOrEqual(10);
  });

  it("stop() waits for the round in flight to publish and mark its entries", async () => {
    const memory = new MemoryOutbox("memory");
    memory.add("doc", entryAt(1));
    const { publisher, relay } = setup([memory]);
    let release!: () => void;
    publisher.gate = new Promise((r) => (release = r));
    relay.start();
    await vi.waitFor(() => expect(publisher.calls).toBe(1));
    let stopped = false;
    const stopping = relay.stop().then(() => (stopped = true));
    await sleep(50);
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(publisher.published).toHaveLength(1);
    expect((await memory.stats()).count).toBe(0);
  });

  it("drained() rejects after its timeout while entries stay pending", async () => {
    const memory = new MemoryOutbox("memory");
    memory.add("doc", entryAt(1));
    const { relay } = setup([memory]); // never started
    await expect(relay.drained(50)).rejects.toThrow(/not drained after 50 ms \(pending: memory=1\)/);
  });

  describe("crashes (Mongo)", () => {
    it("a crash between the write and the publish loses nothing: the next process publishes", async () => {
      const docs = await collection();
      const entries = [entryAt(1), entryAt(2), entryAt(3)];
      for (const [i, e] of entries.entries()) await write(docs, `booking-${i}`, e);

      // The first process: the broker is down at the time, then it dies.
      const first = setup([mongoOutboxSource(docs, "bookings")]);
      first.publisher.failing = true;
      first.relay.start();
      await vi.waitFor(() => expect(first.publisher.calls).toBeGreaterThanOrEqual(1));
      await first.relay.stop();
      expect(first.publisher.published).toEqual([]);

      // A process that never got to start its relay at all.
      setup([mongoOutboxSource(docs, "bookings")]);

      // After the restart: a new connection, source and relay find the entries in the documents.
      const restarted = await MongoClient.connect(mongodbUrl(), { serverSelectionTimeoutMS: 2_000 });
      try {
        const again = restarted.db(db.databaseName).collection<OutboxDocument>(docs.collectionName);
        const second = setup([mongoOutboxSource(again, "bookings")]);
        second.relay.start();
        await second.relay.drained(5_000);
        await second.relay.stop();
        expect(second.publisher.ids()).toEqual(sorted(entries));
        expect(await docs.countDocuments({ "outbox.0": { $exists: true } })).toBe(0);
      } finally {
        await restarted.close();
      }
    });

    it("a crash after the publish but before markSent publishes again (at-least-once); consumers drop the duplicate", async () => {
      const docs = await collection();
      const entries = [entryAt(1), entryAt(2)];
      for (const [i, e] of entries.entries()) await write(docs, `booking-${i}`, e);

      // The broker confirmed, then the process died before removing the entries
      // (simulated by a markSent that fails; a long back-off keeps it from retrying).
      const source = mongoOutboxSource(docs, "bookings");
      const dying: OutboxSource = { ...source, markSent: async () => Promise.reject(new Error("process killed")) };
      const first = setup([dying], { pollIntervalMs: 60_000 });
      first.relay.start();
      await vi.waitFor(() => expect(first.publisher.published).toHaveLength(2));
      await first.relay.stop();
      expect((await source.stats()).count).toBe(2);

      // The restarted relay publishes the same entries again, with the same message ids.
      const second = setup([mongoOutboxSource(docs, "bookings")]);
      second.relay.start();
      await second.relay.drained(5_000);
      await second.relay.stop();
      expect(second.publisher.ids()).toEqual(first.publisher.ids());

      // Duplicates are the price of never losing an event; an idempotent consumer handles each once.
      const handled: string[] = [];
      const handle = idempotent("notifications", new MemoryProcessedMessages(), async (m) => void handled.push(m.messageId));
      for (const m of [...first.publisher.published, ...second.publisher.published]) {
        await handle({ ...m, deliveryCount: 1 } satisfies IncomingMessage);
      }
      expect(handled.sort()).toEqual(sorted(entries));
    });
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
