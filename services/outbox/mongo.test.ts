import { Binary, MongoClient, type Collection, type Db } from "mongodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mongodbUrl, uniqueDatabaseName } from "../../test/support/backing.js";
import { documentLock } from "./lock.js";
import { ensureOutboxIndex, mongoOutboxSource, toStoredEntry, type OutboxDocument } from "./mongo.js";
import type { OutboxEntry } from "./outbox.js";
import { describeOutboxSourceContract, entryAt } from "./source.contract.js";

// One client and one database for the file (dropped afterwards); a collection per test.
let client: MongoClient;
let db: Db;
let n = 0;
beforeAll(async () => {
  client = await MongoClient.connect(mongodbUrl(), { serverSelectionTimeoutMS: 2_000 });
  db = client.db(uniqueDatabaseName("outbox"));
});
afterAll(async () => {
  await db?.dropDatabase();
  await client?.close();
});

interface Doc extends OutboxDocument {
  seats?: number;
}

async function freshCollection(): Promise<Collection<Doc>> {
  const docs = db.collection<Doc>(`docs_${++n}`);
  await ensureOutboxIndex(docs);
  return docs;
}

/** What a repository does: the entries go into the document by the same update. */
async function write(docs: Collection<Doc>, docId: string, entries: OutboxEntry[]) {
  await docs.updateOne({ _id: docId }, { $push: { outbox: { $each: entries.map(toStoredEntry) } } }, { upsert: true });
}

describeOutboxSourceContract("mongoOutboxSource", async () => {
  const docs = await freshCollection();
  return {
    source: mongoOutboxSource(docs, "test"),
    write: (docId, entries) => write(docs, docId, entries),
    cleanup: () => docs.drop().then(() => {}),
  };
});

// The same contract when the writer reports its entries and the source queries the collection
// rarely (a minute here): what pending() answers between queries must be the same.
describeOutboxSourceContract("mongoOutboxSource with noteWritten (scanIntervalMs)", async () => {
  const docs = await freshCollection();
  const source = mongoOutboxSource(docs, "test", { scanIntervalMs: 60_000 });
  return {
    source,
    async write(docId, entries) {
      await write(docs, docId, entries);
      // As a repository does: note the entries as the database returned them.
      const doc = await docs.findOne({ _id: docId });
      for (const e of entries) source.noteWritten(docId, doc!.outbox!.find((stored) => stored.id === e.id)!);
    },
    cleanup: () => docs.drop().then(() => {}),
  };
});

describe("mongoOutboxSource (Mongo only)", () => {
  it("stores entries as BSON Binary and Date, without an unset traceparent", async () => {
    const e = entryAt(1, { body: new Uint8Array([0, 1, 255]) });
    const stored = toStoredEntry(e);
    expect(stored.body).toBeInstanceOf(Binary);
    expect(stored.body.sub_type).toBe(Binary.SUBTYPE_DEFAULT);
    expect(stored.occurredAt).toBeInstanceOf(Date);
    expect("traceparent" in stored).toBe(false);
    const docs = await freshCollection();
    await docs.insertOne({ _id: "d", outbox: [stored] });
    const raw = await docs.findOne({ _id: "d" });
    expect(raw?.outbox?.[0]?.body.toString("hex")).toBe("0001ff");
  });

  it("ensureOutboxIndex is idempotent and creates the index", async () => {
    const docs = await freshCollection();
    await ensureOutboxIndex(docs); // again, as at the next startup
    const names = (await docs.indexes()).map((i) => i.name);
    expect(names).toContain("outbox_occurredAt");
  });

  it("ignores documents without an outbox or with an empty one, and leaves other fields alone", async () => {
    const docs = await freshCollection();
    const e = entryAt(1);
    await docs.insertMany([{ _id: "none", seats: 1 }, { _id: "empty", seats: 2, outbox: [] }, { _id: "one", seats: 3, outbox: [toStoredEntry(e)] }]);
    const source = mongoOutboxSource(docs, "test");
    expect((await source.pending(10)).map((p) => p.docId)).toEqual(["one"]);
    expect(await source.stats()).toEqual({ count: 1, oldest: e.occurredAt });
    await source.markSent("one", e.id);
    expect(await docs.find().sort({ _id: 1 }).toArray()).toEqual([
      { _id: "empty", seats: 2, outbox: [] },
      { _id: "none", seats: 1 },
      { _id: "one", seats: 3, outbox: [] },
    ]);
  });

  it("with the repository's lock, markSent never loses a concurrent update of the same document", async () => {
    // FerretDB 1.x loses concurrent updates of one document (lock.ts); the
    // shared lock serialises the relay's markSent with the writer's updates.
    const docs = await freshCollection();
    const lock = documentLock();
    const source = mongoOutboxSource(docs, "test", { lock });
    const first = Array.from({ length: 20 }, (_, i) => entryAt(i));
    await docs.insertOne({ _id: "ev", seats: 0, outbox: first.map(toStoredEntry) });
    const later = Array.from({ length: 20 }, (_, i) => entryAt(100 + i));
    await Promise.all([
      ...first.map((e) => source.markSent("ev", e.id)),
      ...later.map((e) => lock("ev", () => docs.updateOne({ _id: "ev" }, { $inc: { seats: 1 }, $push: { outbox: toStoredEntry(e) } }))),
    ]);
    const doc = await docs.findOne({ _id: "ev" });
    expect(doc?.seats).toBe(20);
    expect(doc?.outbox?.map((e) => e.id)).toEqual(later.map((e) => e.id));
  });

  it("with scanIntervalMs, serves noted entries without querying, and still finds unnoted ones at the next query", async () => {
    const docs = await freshCollection();
    const source = mongoOutboxSource(docs, "test", { scanIntervalMs: 200 });
    const [a, b] = [entryAt(1), entryAt(2)];
    expect(await source.pending(10)).toEqual([]); // the first call queries
    await write(docs, "noted", [a]);
    source.noteWritten("noted", (await docs.findOne({ _id: "noted" }))!.outbox![0]!);
    await write(docs, "unnoted", [b]); // another process's write
    expect((await source.pending(10)).map((p) => p.entry.id)).toEqual([a.id]);
    await new Promise((r) => setTimeout(r, 250));
    expect((await source.pending(10)).map((p) => p.entry.id)).toEqual([a.id, b.id]);
    await source.markSent("noted", a.id);
    await source.markSent("unnoted", b.id);
    expect(await source.pending(10)).toEqual([]);
    expect(await source.stats()).toEqual({ count: 0 });
    // A late note of an entry already sent is ignored.
    source.noteWritten("noted", toStoredEntry(a));
    expect(await source.pending(10)).toEqual([]);
  });
});
