import type { OutboxEntry, OutboxSource, PendingEntry } from "./outbox.js";

/**
 * The outbox of an in-memory repository. The repository calls add() in the
 * same synchronous step as the state change it announces, so no other code
 * can observe the change without its entry (the in-memory equivalent of
 * embedding the entry in the document).
 */
export class MemoryOutbox implements OutboxSource {
  private readonly docs = new Map<string, OutboxEntry[]>();

  constructor(readonly name: string) {}

  add(docId: string, entry: OutboxEntry): void {
    const entries = this.docs.get(docId);
    if (entries) entries.push(entry);
    else this.docs.set(docId, [entry]);
  }

  async pending(limit: number): Promise<PendingEntry[]> {
    return this.all().slice(0, Math.max(0, limit));
  }

  async markSent(docId: string, entryId: string): Promise<void> {
    const entries = this.docs.get(docId);
    if (!entries) return;
    const rest = entries.filter((e) => e.id !== entryId);
    if (rest.length > 0) this.docs.set(docId, rest);
    else this.docs.delete(docId);
  }

  async stats(): Promise<{ count: number; oldest?: Date }> {
    const all = this.all();
    const oldest = all[0]?.entry.occurredAt;
    return { count: all.length, ...(oldest ? { oldest } : {}) };
  }

  /** Every entry, in the Mongo source's order: occurredAt, entry id, document id. */
  private all(): PendingEntry[] {
    const all = [...this.docs].flatMap(([docId, entries]) => entries.map((entry) => ({ docId, entry })));
    return all.sort(
      (a, b) =>
        a.entry.occurredAt.getTime() - b.entry.occurredAt.getTime() ||
        compare(a.entry.id, b.entry.id) ||
        compare(a.docId, b.docId),
    );
  }
}

// Code-unit order, as MongoDB compares strings (localeCompare would not).
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
