import type http2 from "node:http2";

/**
 * Gives an HTTP/2 session (server or client side) stream tables that do not
 * make every finished stream outlive two scavenges (bench/README.md finding 10).
 *
 * Node's HTTP/2 core keeps a session's streams in a `Map` (by id) and, until
 * each gets its id, in a `Set`: one insert and one delete per stream in each.
 * Measured under concurrent unary calls: a ten-line `node:http2` server and
 * the EventService promoted ~10% of all they allocated to V8's old space
 * (whole streams and all hanging off them, freed only by the next
 * mark-compact: old space grew to ~90 MB between 45 ms pauses); with these
 * two tables swapped for the ones below, ~0.6%. Our reading, not proven: the
 * churn rebuilds the Map's and Set's hash tables every few calls, V8 links a
 * retired table to its successor (for live iterators), and once one retired
 * table sits in old space, scavenges keep the chain of successors, and the
 * streams they held, alive. Whether such a chain starts depends on timing,
 * which is why it came and went between runs (and why grpc-js's server,
 * which uses the same node internals, sometimes showed it and sometimes not).
 *
 * These are node internals: node's core uses `get`, `set`, `delete`, `size`
 * and `forEach` on the first, `add`, `delete`, `size` and `forEach` on the
 * second (Node 20's lib/internal/http2/core.js). The swap only happens when
 * the session holds exactly that shape, so another Node version that
 * changed it keeps its own tables: it works as before, with more garbage.
 * Returns whether the tables were swapped (or already were).
 */
export function useGcFriendlyStreamTables(session: http2.Http2Session): boolean {
  const stateKey = Object.getOwnPropertySymbols(session).find((key) => key.description === "state");
  const state = stateKey && (session as unknown as Record<symbol, SessionState | undefined>)[stateKey];
  if (!state) return false;
  const { streams, pendingStreams } = state;
  if (streams instanceof StreamTable && pendingStreams instanceof PendingStreams) return true;
  // Node's tables are primordials' SafeMap/SafeSet, which are not `instanceof Map/Set`: check what is used.
  if (!hasMethods(streams, ["get", "set", "delete", "forEach"]) || !hasMethods(pendingStreams, ["add", "delete", "forEach"])) return false;
  const table = new StreamTable();
  streams.forEach((stream, id) => table.set(id, stream));
  const pending = new PendingStreams();
  pendingStreams.forEach((stream) => pending.add(stream));
  state.streams = table;
  state.pendingStreams = pending;
  return true;
}

interface SessionState {
  streams: { forEach(visit: (stream: unknown, id: number) => void): void };
  pendingStreams: { forEach(visit: (stream: unknown) => void): void };
}

function hasMethods(table: unknown, names: string[]): boolean {
  return typeof table === "object" && table !== null && typeof (table as { size?: unknown }).size === "number" && names.every((name) => typeof (table as Record<string, unknown>)[name] === "function");
}

// A key this large makes V8 keep the object's indexed properties in a hash
// table for good ("requires slow elements"), so it never turns them into a
// flat array as long as the highest stream id (ids only grow).
const FORCE_DICTIONARY_KEY = 2 ** 30;

/** A session's streams by id: the Map operations node's HTTP/2 core performs, over a plain object. */
export class StreamTable<T = unknown> {
  private readonly byId: Record<number, T | undefined>;
  private count = 0;

  constructor() {
    this.byId = Object.create(null) as Record<number, T | undefined>;
    this.byId[FORCE_DICTIONARY_KEY] = undefined;
    delete this.byId[FORCE_DICTIONARY_KEY];
  }

  get size(): number {
    return this.count;
  }

  get(id: number): T | undefined {
    return this.byId[id];
  }

  has(id: number): boolean {
    return this.byId[id] !== undefined;
  }

  set(id: number, stream: T): this {
    if (this.byId[id] === undefined) this.count++;
    this.byId[id] = stream;
    return this;
  }

  delete(id: number): boolean {
    if (this.byId[id] === undefined) return false;
    delete this.byId[id];
    this.count--;
    return true;
  }

  /** In ascending id order; a stream deleted during the walk (node destroys them from inside it) is skipped. */
  forEach(visit: (stream: T, id: number, table: this) => void): void {
    for (const key of Object.keys(this.byId)) {
      const stream = this.byId[Number(key)];
      if (stream !== undefined) visit(stream, Number(key), this);
    }
  }
}

/** A session's streams that have no id yet (few, briefly): the Set operations node performs, over an array. */
export class PendingStreams<T = unknown> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  has(stream: T): boolean {
    return this.items.includes(stream);
  }

  add(stream: T): this {
    if (!this.items.includes(stream)) this.items.push(stream);
    return this;
  }

  delete(stream: T): boolean {
    const at = this.items.indexOf(stream);
    if (at < 0) return false;
    // Order does not matter to node: move the last one into the gap.
    this.items[at] = this.items[this.items.length - 1]!;
    this.items.pop();
    return true;
  }

  /** Over a snapshot: node closes streams from inside the walk. */
  forEach(visit: (stream: T, same: T, set: this) => void): void {
    for (const stream of [...this.items]) visit(stream, stream, this);
  }
}
