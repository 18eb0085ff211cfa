import net from "node:net";
import { MongoClient, MongoServerError } from "mongodb";
import { describe, it, expect } from "vitest";
import { startFerretDB } from "./server.js";

const isOpen = (port: number) =>
  new Promise<boolean>((done) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    sock.once("connect", () => (sock.destroy(), done(true)));
    sock.once("error", () => done(false));
  });

describe("startFerretDB", () => {
  it("serves MongoDB clients and stops cleanly", async () => {
    const db = await startFerretDB();
    const client = new MongoClient(db.url, { serverSelectionTimeoutMS: 5_000 });
    try {
      await client.connect();
      const items = client.db("ferrettest").collection<{ _id: string; n: number }>("items");

      await items.insertOne({ _id: "a", n: 1 });
      expect(await items.findOne({ _id: "a" })).toEqual({ _id: "a", n: 1 });

      await items.createIndex({ n: 1 }, { unique: true });
      const dup = await items.insertOne({ _id: "b", n: 1 }).catch((e: unknown) => e);
      expect(dup).toBeInstanceOf(MongoServerError);
      expect((dup as MongoServerError).code).toBe(11000);
    } finally {
      await client.close();
      await db.stop();
    }
    expect(await isOpen(db.port)).toBe(false);
  });
});
