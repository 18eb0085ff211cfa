import { Binary, type Collection, type Document } from "mongodb";
import type { DocumentLock } from "./lock.js";
import { traceFields, type OutboxEntry, type OutboxSource, type PendingEntry } from "./outbox.js";

/**
 * The BSON form of an OutboxEntry inside a document's `outbox` array. Always
 * build it with toStoredEntry so every writer stores the same field order
 * (FerretDB compares embedded documents field order included).
 */
export interface StoredEntry {
  id: string;
  routingKey: string;
  type: string;
  body: Binary;
  occurredAt: Date;
  traceparent?: string;
  tracestate?: string;
}

/** Any document that embeds an outbox. */
export interface OutboxDocument {
  _id: string;
  outbox?: StoredEntry[];
}

/** For `$push: { outbox: toStoredEntry(e) }` or an inserted document's `outbox: [...]`. */
export function toStoredEntry(entry: OutboxEntry): StoredEntry {
  return {
    id: entry.id,
    routingKey: entry.routingKey,
    type: entry.type,
    body: new Binary(entry.body),
    occurredAt: entry.occurredAt,
    // Left out rather than stored as null (the driver writes undefined as null).
    ...traceFields(entry),
  };
}

export function fromStoredEntry(stored: StoredEntry): OutboxEntry {
  // A client with promoteBuffers returns a Buffer instead of a Binary; copy
  // either way so callers get a plain Uint8Array they own.
  const body: Uint8Array = stored.body instanceof Binary ? stored.body.value() : stored.body;
  return {
    id: stored.id,
    routingKey: stored.routingKey,
    type: stored.type,
    body: new Uint8Array(body),
    occurredAt: stored.occurredAt,
    ...traceFields(stored),
  };
}

/** Documents with at least one pending entry (an empty array has no `outbox.occurredAt`). */
const HAS_PENDING = { "outbox.occurredAt": { $exists: true } };

/**
 * Makes "documents with pending entries" cheap on MongoDB: a sparse multikey
 * index holds only documents whose outbox is not empty, and serves
 * HAS_PENDING. (FerretDB 1.24 accepts but ignores `sparse`, has no partial
 * indexes, and pushes no filter but `_id` down to SQLite, so there every
 * outbox query scans the collection.) Idempotent; one index per command
 * (FerretDB 1.24 crashes on several existing ones in one createIndexes).
 */
export async function ensureOutboxIndex(collection: Collection<any>): Promise<void> {
  await collection.createIndex({ "outbox.occurredAt": 1 }, { name: "outbox_occurredAt", sparse: true });
}

export interface MongoOutboxOptions {
  /**
   * Serialises markSent with the repository's own updates of the same
   * document: required on FerretDB 1.x, which loses concurrent updates
   * (see lock.ts). Pass the lock the repository uses for this collection.
   */
  lock?: DocumentLock;
  /**
   * 0 (default): every pending() queries the collection. Above 0, the
   * writer reports what it stores (noteWritten), and pending() answers from
   * what it knows (entries noted, and those its last query found, until
   * marked sent), querying the collection at most this often. Why: on
   * FerretDB 1.x every outbox query reads the whole collection (see
   * ensureOutboxIndex), so querying once per write made each booking cost
   * O(all bookings). Entries written by another process (or before a
   * restart) are found by the next query, at most this much later.
   */
  scanIntervalMs?: number;
}

/** An outbox source whose writer can tell it about new entries (see MongoOutboxOptions.scanIntervalMs). */
export interface MongoOutboxSource extends OutboxSource {
  /**
   * The writer has stored `entry` in document `docId` (call it only once the
   * write is acknowledged); `entry` as the database returned it, so that
   * markSent can `$pull` it without reading it first.
   */
  noteWritten(docId: string, entry: StoredEntry): void;
}

/** Ids of entries marked sent lately: a note arriving after its entry was sent (a scan was quicker) is dropped. */
const RECENTLY_SENT = 10_000;

/**
 * The pending entries embedded in `collection`'s documents. Only aggregation
 * stages FerretDB 1.24 implements are used ($match, $unwind, $sort, $limit,
 * $project, $group with $sum); it lacks $min/$first accumulators and $size,
 * and ignores array semantics when sorting a find() by an array field.
 */
export function mongoOutboxSource(collection: Collection<any>, name: string, options: MongoOutboxOptions = {}): MongoOutboxSource {
  const docs = collection as Collection<OutboxDocument>;
  const lock: DocumentLock = options.lock ?? ((_key, fn) => fn());
  const scanIntervalMs = options.scanIntervalMs ?? 0;
  const unwound = (): Document[] => [{ $match: HAS_PENDING }, { $unwind: "$outbox" }];
  // Entry ids break ties (UUIDv7, so creation order); _id keeps it total.
  const oldestFirst = { $sort: { "outbox.occurredAt": 1, "outbox.id": 1, _id: 1 } };

  // Pending entries this source knows of, by entry id, with their stored form.
  const known = new Map<string, { docId: string; stored: StoredEntry }>();
  const recentlySent = new Set<string>();
  let lastScan = -Infinity;
  // A query that hit its limit did not see everything: the next pending() queries again.
  let lastScanComplete = false;

  const scan = async (limit: number) => {
    const rows = await docs
      .aggregate<{ _id: string; outbox: StoredEntry }>([...unwound(), oldestFirst, { $limit: limit }, { $project: { outbox: 1 } }])
      .toArray();
    if (scanIntervalMs > 0) {
      lastScan = Date.now();
      lastScanComplete = rows.length < limit;
      for (const r of rows) if (!recentlySent.has(r.outbox.id)) known.set(r.outbox.id, { docId: r._id, stored: r.outbox });
    }
    return rows.map((r): PendingEntry => ({ docId: r._id, entry: fromStoredEntry(r.outbox) }));
  };

  const fromKnown = (limit: number): PendingEntry[] =>
    [...known.values()]
      .sort(
        (a, b) =>
          a.stored.occurredAt.getTime() - b.stored.occurredAt.getTime() || compare(a.stored.id, b.stored.id) || compare(a.docId, b.docId),
      )
      .slice(0, limit)
      .map((k) => ({ docId: k.docId, entry: fromStoredEntry(k.stored) }));

  const forget = (entryId: string) => {
    known.delete(entryId);
    if (scanIntervalMs <= 0) return;
    recentlySent.add(entryId);
    if (recentlySent.size > RECENTLY_SENT) recentlySent.delete(recentlySent.values().next().value!);
  };

  return {
    name,

    noteWritten(docId, entry) {
      if (scanIntervalMs > 0 && !recentlySent.has(entry.id)) known.set(entry.id, { docId, stored: entry });
    },

    async pending(limit) {
      if (limit <= 0) return [];
      const fresh = scanIntervalMs > 0 && lastScanComplete && Date.now() - lastScan < scanIntervalMs;
      // $sort followed by $limit is a bounded top-k sort on MongoDB.
      return fresh ? fromKnown(limit) : scan(limit);
    },

    async markSent(docId, entryId) {
      await lock(docId, async () => {
        // FerretDB 1.24's $pull removes only elements equal to the given
        // value: a condition like { id } matches nothing. So pull the entry
        // exactly as stored: known already, or read first (also correct on
        // MongoDB). Entries never change, so a repeat or a concurrent
        // markSent is a no-op.
        const cached = known.get(entryId);
        if (cached && cached.docId === docId) {
          const pulled = await docs.updateOne({ _id: docId }, { $pull: { outbox: cached.stored } });
          if (pulled.modifiedCount > 0) return forget(entryId);
        }
        const doc = await docs.findOne({ _id: docId }, { projection: { outbox: 1 } });
        const stored = doc?.outbox?.find((e) => e.id === entryId);
        if (stored) await docs.updateOne({ _id: docId }, { $pull: { outbox: stored } });
        forget(entryId);
      });
    },

    async stats() {
      const [counted, oldest] = await Promise.all([
        docs.aggregate<{ count: number }>([...unwound(), { $group: { _id: null, count: { $sum: 1 } } }]).toArray(),
        docs
          .aggregate<{ outbox: { occurredAt: Date } }>([...unwound(), oldestFirst, { $limit: 1 }, { $project: { "outbox.occurredAt": 1 } }])
          .toArray(),
      ]);
      const at = oldest[0]?.outbox.occurredAt;
      return { count: counted[0]?.count ?? 0, ...(at ? { oldest: at } : {}) };
    },
  };
}

// Code-unit order, as MongoDB compares strings.
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
