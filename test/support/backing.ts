import { randomBytes } from "node:crypto";
import { MongoClient, type Db } from "mongodb";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { declareTopology, localVhostUrl } from "../../scripts/rabbitmq-vhost.js";

/** The run's MongoDB-wire server (see global-setup.ts). */
export function mongodbUrl(): string {
  return inject("mongodbUrl");
}

/** The run's RabbitMQ (see global-setup.ts). */
export function amqpUrl(): string {
  return inject("amqpUrl");
}

/**
 * A vhost of one test file's own beside the run's (on the local broker; the
 * run's own vhost where rabbitmqctl can't make one), with the exchanges
 * declared: for tests that listen to every message on the exchange and
 * must not see what other files publish at the same time.
 */
export async function ownAmqpUrl(name: string): Promise<string> {
  const run = new URL(amqpUrl());
  const vhost = `${decodeURIComponent(run.pathname.slice(1)) || "myevents-test"}-${name}`;
  const local = run.hostname === "127.0.0.1" || run.hostname === "localhost";
  const url = (local && localVhostUrl(vhost)) || run.toString();
  await declareTopology(url);
  return url;
}

/** A database name no other test uses, so test files never see each other's data. */
export function uniqueDatabaseName(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString("hex")}`;
}

/**
 * One client for a test file and a fresh database per call of the returned
 * function, with a repository built on it; cleanup drops the database.
 */
export function mongoRepositoryFixture<R extends { ensureIndexes(): Promise<void>; close(): Promise<void> }>(
  prefix: string,
  make: (db: Db) => R,
) {
  let client: MongoClient | undefined;
  beforeAll(async () => {
    client = await MongoClient.connect(mongodbUrl(), { serverSelectionTimeoutMS: 2_000 });
  });
  afterAll(async () => {
    await client?.close();
  });
  return {
    client: () => client!,
    async fresh() {
      const db = client!.db(uniqueDatabaseName(prefix));
      const repo = make(db);
      await repo.ensureIndexes();
      return {
        db,
        repo,
        async cleanup() {
          await repo.close(); // not the owner: leaves the shared client open
          await db.dropDatabase();
        },
      };
    },
  };
}

/** What every MongoDB adapter must do with its client: own it when it opened it, and report outages. */
export function describeMongoClientLifecycle<R extends { ping(): Promise<void>; close(): Promise<void> }>(
  prefix: string,
  adapter: { open(url: string, database: string): R; on(db: Db): R },
) {
  describe(`${prefix}: MongoDB client lifecycle`, () => {
    it("open() owns its client: ping works until close", async () => {
      const name = uniqueDatabaseName(prefix);
      const repo = adapter.open(mongodbUrl(), name);
      const admin = await MongoClient.connect(mongodbUrl());
      try {
        await expect(repo.ping()).resolves.toBeUndefined();
      } finally {
        await repo.close();
        await admin.db(name).dropDatabase();
        await admin.close();
      }
      await expect(repo.ping()).rejects.toThrow();
    });

    it("ping rejects when the server is unreachable", async () => {
      const dead = new MongoClient("mongodb://127.0.0.1:1/", { serverSelectionTimeoutMS: 300 });
      try {
        await expect(adapter.on(dead.db("x")).ping()).rejects.toThrow();
      } finally {
        await dead.close();
      }
    });
  });
}
