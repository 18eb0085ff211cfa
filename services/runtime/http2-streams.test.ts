import http2 from "node:http2";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { PendingStreams, StreamTable, useGcFriendlyStreamTables } from "./http2-streams.js";

describe("StreamTable (node's Map operations on a session's streams)", () => {
  it("sets, gets, counts and deletes by id like a Map", () => {
    const table = new StreamTable<string>();
    expect(table.set(1, "a")).toBe(table);
    table.set(3, "b").set(3, "c");
    expect(table.size).toBe(2);
    expect(table.get(3)).toBe("c");
    expect(table.has(1)).toBe(true);
    expect(table.delete(1)).toBe(true);
    expect(table.delete(1)).toBe(false);
    expect(table.get(1)).toBeUndefined();
    expect(table.size).toBe(1);
  });

  it("walks in ascending id order and skips what the walk itself deletes", () => {
    const table = new StreamTable<string>();
    for (const id of [7, 1, 5, 3]) table.set(id, `s${id}`);
    const seen: number[] = [];
    table.forEach((_stream, id, t) => {
      seen.push(id);
      if (id === 3) t.delete(5);
      t.delete(id);
    });
    expect(seen).toEqual([1, 3, 7]);
    expect(table.size).toBe(0);
  });

  it("stays correct over many ids (ids only grow on a session)", () => {
    const table = new StreamTable<number>();
    for (let id = 1; id < 20_001; id += 2) {
      table.set(id, id);
      if (id > 128) table.delete(id - 128);
    }
    expect(table.size).toBe(64);
    expect(table.get(19_999)).toBe(19_999);
    expect(table.get(19_871)).toBeUndefined();
  });
});

describe("PendingStreams (node's Set operations on streams without an id)", () => {
  it("adds once, deletes, counts, and walks a snapshot", () => {
    const set = new PendingStreams<string>();
    set.add("a").add("b").add("a").add("c");
    expect(set.size).toBe(3);
    expect(set.delete("a")).toBe(true);
    expect(set.delete("a")).toBe(false);
    expect(set.has("c")).toBe(true);
    const seen: string[] = [];
    set.forEach((s, same, all) => {
      expect(same).toBe(s);
      seen.push(s);
      all.delete(s);
    });
    expect(seen.sort()).toEqual(["b", "c"]);
    expect(set.size).toBe(0);
  });
});

describe("useGcFriendlyStreamTables on real node:http2 sessions", () => {
  const closers: Array<() => void> = [];
  afterEach(() => {
    for (const close of closers.splice(0)) close();
  });

  async function serverAndClient(onStream: (stream: http2.ServerHttp2Stream) => void) {
    const swapped: boolean[] = [];
    const sessions: http2.ServerHttp2Session[] = [];
    const server = http2.createServer();
    server.on("session", (session) => {
      sessions.push(session);
      swapped.push(useGcFriendlyStreamTables(session));
    });
    server.on("stream", onStream);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    closers.push(() => {
      client.destroy();
      server.close();
    });
    return { client, swapped, sessions };
  }

  function get(client: http2.ClientHttp2Session, path = "/"): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = client.request({ ":path": path });
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (chunk: string) => (body += chunk));
      req.on("end", () => resolve(body));
      req.on("error", reject);
      req.end();
    });
  }

  function tablesOf(session: http2.Http2Session): { streams: unknown; pendingStreams: unknown } {
    const key = Object.getOwnPropertySymbols(session).find((k) => k.description === "state")!;
    return (session as unknown as Record<symbol, { streams: unknown; pendingStreams: unknown }>)[key]!;
  }

  it("swaps a server session's tables, which then serve concurrent streams and empty again", async () => {
    const { client, swapped, sessions } = await serverAndClient((stream) => {
      stream.respond({ ":status": 200 });
      setTimeout(() => stream.end(`answer ${stream.id}`), 5);
    });
    const bodies = await Promise.all(Array.from({ length: 50 }, () => get(client)));
    expect(swapped).toEqual([true]);
    expect(new Set(bodies).size).toBe(50);
    const tables = tablesOf(sessions[0]!);
    expect(tables.streams).toBeInstanceOf(StreamTable);
    expect(tables.pendingStreams).toBeInstanceOf(PendingStreams);
    await new Promise((r) => setImmediate(r));
    expect((tables.streams as StreamTable).size).toBe(0);
  });

  it("lets node destroy a session with streams still open (its forEach path)", async () => {
    const opened: http2.ServerHttp2Stream[] = [];
    const { client, sessions } = await serverAndClient((stream) => {
      opened.push(stream);
      stream.respond({ ":status": 200 }); // never ends
    });
    const pending = Array.from({ length: 3 }, () => get(client).catch((err: Error) => err));
    while (opened.length < 3) await new Promise((r) => setTimeout(r, 5));
    const closed = opened.map((s) => once(s, "close"));
    sessions[0]!.destroy();
    await Promise.all(closed);
    expect(opened.every((s) => s.destroyed)).toBe(true);
    expect((tablesOf(sessions[0]!).streams as StreamTable).size).toBe(0);
    await Promise.all(pending);
  });

  it("swaps a client session's tables mid-life, keeping the streams already in them", async () => {
    const { client } = await serverAndClient((stream) => {
      stream.respond({ ":status": 200 });
      setTimeout(() => stream.end("ok"), 20);
    });
    const first = get(client);
    await once(client, "connect").catch(() => undefined);
    expect(useGcFriendlyStreamTables(client)).toBe(true);
    expect(useGcFriendlyStreamTables(client)).toBe(true); // idempotent
    const rest = await Promise.all(Array.from({ length: 20 }, () => get(client)));
    expect(await first).toBe("ok");
    expect(rest.every((b) => b === "ok")).toBe(true);
    // A client stream is removed when it closes, a moment after its last data.
    const table = tablesOf(client).streams as StreamTable;
    for (let i = 0; i < 100 && table.size > 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(table.size).toBe(0);
  });

  it("leaves anything without node's shape alone", () => {
    expect(useGcFriendlyStreamTables({} as http2.Http2Session)).toBe(false);
    const state = Symbol("state");
    const odd = { [state]: { streams: new Map(), pendingStreams: "not a set" } };
    expect(useGcFriendlyStreamTables(odd as unknown as http2.Http2Session)).toBe(false);
    expect(odd[state].streams).toBeInstanceOf(Map);
  });
});
