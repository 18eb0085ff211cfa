import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { newId } from "../runtime/ids.js";
import type { OutboxEntry, OutboxSource } from "./outbox.js";

export interface OpenedSource {
  source: OutboxSource;
  /** Stores entries in a document's outbox the way a repository would (creating the document if needed). */
  write(docId: string, entries: OutboxEntry[]): Promise<void>;
  cleanup(): Promise<void>;
}

const BASE = Date.UTC(2030, 0, 1);

/** An entry that occurred `second` seconds after BASE. */
export function entryAt(second: number, init: Partial<OutboxEntry> = {}): OutboxEntry {
  const at = BASE + second * 1000;
  return {
    id: newId(at),
    routingKey: "booking.confirmed",
    type: "myevents.v1.BookingConfirmed",
    body: new Uint8Array(randomBytes(16)),
    occurredAt: new Date(at),
    ...init,
  };
}

/** The behaviour every OutboxSource shares; each adapter's test file calls this with a factory. */
export function describeOutboxSourceContract(name: string, open: () => Promise<OpenedSource>) {
  describe(`OutboxSource contract: ${name}`, () => {
    let s: OpenedSource;
    beforeEach(async () => {
      s = await open();
    });
    afterEach(async () => {
      await s.cleanup();
    });

    const ids = async (limit = 100) => (await s.source.pending(limit)).map((p) => `${p.docId}/${p.entry.id}`);

    it("reports an empty outbox", async () => {
      expect(await s.source.pending(10)).toEqual([]);
      expect(await s.source.stats()).toEqual({ count: 0 });
    });

    it("returns entries of several documents oldest first, up to the limit", async () => {
      const [a5, a1, b3, c2, c9] = [entryAt(5), entryAt(1), entryAt(3), entryAt(2), entryAt(9)];
      await s.write("doc-a", [a5!, a1!]);
      await s.write("doc-b", [b3!]);
      await s.write("doc-c", [c2!, c9!]);
      const want = [`doc-a/${a1!.id}`, `doc-c/${c2!.id}`, `doc-b/${b3!.id}`, `doc-a/${a5!.id}`, `doc-c/${c9!.id}`];
      expect(await ids()).toEqual(want);
      expect(await ids(2)).toEqual(want.slice(0, 2));
      expect(await ids(0)).toEqual([]);
    });

    it("orders entries of the same time by id", async () => {
      const [x, y] = [entryAt(4), entryAt(4)].sort((p, q) => (p.id < q.id ? -1 : 1));
      await s.write("doc-a", [y!, x!]);
      expect(await ids()).toEqual([`doc-a/${x!.id}`, `doc-a/${y!.id}`]);
    });

    it("markSent removes only that entry and is idempotent", async () => {
      const [a1, a2, b1] = [entryAt(1), entryAt(2), entryAt(3)];
      await s.write("doc-a", [a1!, a2!]);
      await s.write("doc-b", [b1!]);
      await s.source.markSent("doc-a", a1!.id);
      await s.source.markSent("doc-a", a1!.id); // again, as after a crash before the first one returned
      await s.source.markSent("doc-b", a2!.id); // entry of another document: untouched
      await s.source.markSent("doc-x", a2!.id); // unknown document
      expect(await ids()).toEqual([`doc-a/${a2!.id}`, `doc-b/${b1!.id}`]);
      await s.source.markSent("doc-a", a2!.id);
      await s.source.markSent("doc-b", b1!.id);
      expect(await ids()).toEqual([]);
    });

    it("sees entries added to a document after earlier ones were sent", async () => {
      const [a1, a2] = [entryAt(1), entryAt(2)];
      await s.write("doc-a", [a1!]);
      await s.source.markSent("doc-a", a1!.id);
      await s.write("doc-a", [a2!]);
      expect(await ids()).toEqual([`doc-a/${a2!.id}`]);
    });

    it("stats counts pending entries and reports the oldest", async () => {
      const [a7, a3, b5] = [entryAt(7), entryAt(3), entryAt(5)];
      await s.write("doc-a", [a7!, a3!]);
      await s.write("doc-b", [b5!]);
      expect(await s.source.stats()).toEqual({ count: 3, oldest: a3!.occurredAt });
      await s.source.markSent("doc-a", a3!.id);
      expect(await s.source.stats()).toEqual({ count: 2, oldest: b5!.occurredAt });
    });

    it("returns every field unchanged, bodies byte-exact", async () => {
      const everyByte = new Uint8Array(256).map((_, i) => i);
      const entries = [
        entryAt(1, { body: everyByte, traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" }),
        entryAt(2, { body: new Uint8Array(0) }),
        entryAt(3, { body: new Uint8Array(randomBytes(256 * 1024)), routingKey: "event.cancelled", type: "myevents.v1.EventCancelled" }),
        entryAt(4.567, { body: new Uint8Array([0, 0, 0]) }), // millisecond precision
      ];
      await s.write("doc-a", entries);
      const got = (await s.source.pending(10)).map((p) => p.entry);
      expect(got).toHaveLength(entries.length);
      got.forEach((g, i) => {
        const want = entries[i]!;
        expect(g.body).toBeInstanceOf(Uint8Array);
        expect(Buffer.from(g.body).equals(Buffer.from(want.body))).toBe(true);
        expect({ ...g, body: undefined }).toEqual({ ...want, body: undefined });
        expect("traceparent" in g).toBe(want.traceparent !== undefined);
      });
    });
  });
}
