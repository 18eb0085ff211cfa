import { MongoClient, type Db } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mongodbUrl, uniqueDatabaseName } from "../../test/support/backing.js";
import type { IncomingMessage } from "../messaging/port.js";
import { newId } from "../runtime/ids.js";
import { MongoProcessedMessages } from "./processed-mongo.js";
import { MemoryProcessedMessages, idempotent, type ProcessedDoc, type ProcessedMessages } from "./processed.js";

let client: MongoClient;
let db: Db;
beforeAll(async () => {
  client = await MongoClient.connect(mongodbUrl(), { serverSelectionTimeoutMS: 2_000 });
  db = client.db(uniqueDatabaseName("outbox_processed"));
});
afterAll(async () => {
  await db?.dropDatabase();
  await client?.close();
});

function message(messageId = newId()): IncomingMessage {
  return {
    routingKey: "booking.confirmed",
    messageId,
    type: "myevents.v1.BookingConfirmed",
    body: new Uint8Array([1, 2, 3]),
    timestamp: new Date(),
    deliveryCount: 1,
  };
}

const stores: [string, () => ProcessedMessages][] = [
  ["MemoryProcessedMessages", () => new MemoryProcessedMessages()],
  ["MongoProcessedMessages", () => new MongoProcessedMessages(db)],
];

describe.each(stores)("%s", (_name, open) => {
  it("records ids per consumer; recording twice is fine", async () => {
    const store = open();
    const id = newId();
    expect(await store.has("notifications", id)).toBe(false);
    await store.record("notifications", id);
    await store.record("notifications", id); // a duplicate (11000 on Mongo) is not an error
    expect(await store.has("notifications", id)).toBe(true);
    expect(await store.has("bookings", id)).toBe(false);
  });

  it("idempotent() runs the handler once per consumer and message id", async () => {
    const store = open();
    const seen: string[] = [];
    const notifications = idempotent("notifications", store, async (m) => void seen.push(`notifications:${m.messageId}`));
    const bookings = idempotent("bookings", store, async (m) => void seen.push(`bookings:${m.messageId}`));
    const m = message();
    await notifications(m);
    await notifications({ ...m, deliveryCount: 2 }); // redelivered duplicate: skipped
    await bookings(m); // another consumer: runs
    const other = message();
    await notifications(other);
    expect(seen).toEqual([`notifications:${m.messageId}`, `bookings:${m.messageId}`, `notifications:${other.messageId}`]);
  });

  it("records nothing when the handler throws, so a redelivery runs it again", async () => {
    const store = open();
    let attempts = 0;
    const handle = idempotent("notifications", store, async () => {
      if (++attempts === 1) throw new Error("downstream unavailable");
    });
    const m = message();
    await expect(handle(m)).rejects.toThrow("downstream unavailable");
    expect(await store.has("notifications", m.messageId)).toBe(false);
    await handle({ ...m, deliveryCount: 2 });
    await handle({ ...m, deliveryCount: 3 });
    expect(attempts).toBe(2);
    expect(await store.has("notifications", m.messageId)).toBe(true);
  });
});

describe("MongoProcessedMessages (Mongo only)", () => {
  it("stores one processed_messages document per consumer and message, keyed <consumer>:<messageId>", async () => {
    const store = new MongoProcessedMessages(db);
    const id = newId();
    const before = Date.now();
    await store.record("notifications", id);
    await store.record("notifications", id);
    const docs = await db.collection<ProcessedDoc>("processed_messages").find({ _id: `notifications:${id}` }).toArray();
    expect(docs).toHaveLength(1);
    expect(docs[0]!.at).toBeInstanceOf(Date);
    expect(docs[0]!.at.getTime()).toBeGreaterThanOrEqual(before - 1);
  });
});
