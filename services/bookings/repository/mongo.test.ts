import { Binary } from "mongodb";
import { beforeAll, describe, expect, it } from "vitest";
import { describeMongoClientLifecycle, mongoRepositoryFixture } from "../../../test/support/backing.js";
import { newId } from "../../runtime/ids.js";
import { MongoBookingRepository } from "./mongo.js";
import { booking, describeBookingRepositoryContract, entry } from "./repository.contract.js";
import { reserveMarker } from "./repository.js";

// One client for the file; every test gets its own database, dropped afterwards.
const fixture = mongoRepositoryFixture("bookings", (db) => new MongoBookingRepository(db));
const freshRepo = fixture.fresh;
let ferretdb1 = false;
beforeAll(async () => {
  const info = await fixture.client().db("admin").command({ buildInfo: 1 });
  ferretdb1 = typeof info.ferretdbVersion === "string" && info.ferretdbVersion.startsWith("v1.");
});

describeBookingRepositoryContract("MongoBookingRepository", freshRepo);

describe("MongoBookingRepository (Mongo only)", () => {
  it("ensureIndexes is idempotent and creates the indexes", async () => {
    const { db, repo, cleanup } = await freshRepo();
    try {
      await repo.ensureIndexes(); // a second time at the next startup
      const indexes = await db.collection("bookings").listIndexes().toArray();
      expect(indexes.map((i) => i.key as object)).toEqual(
        expect.arrayContaining([
          { _id: 1 },
          { userId: 1, requestId: 1 },
          { userId: 1, _id: -1 },
          { eventId: 1, state: 1 },
          { state: 1, updatedAt: 1 },
          { "outbox.occurredAt": 1 },
        ]),
      );
      expect(indexes).toHaveLength(6);
      expect(indexes.find((i) => i.name === "userId_requestId")?.unique).toBe(true);
    } finally {
      await cleanup();
    }
  });

  it("stores bookings and inventories in the documented shape", async () => {
    const { db, repo, cleanup } = await freshRepo();
    try {
      const b = booking({ seats: 3, requestId: "r1" });
      await repo.insertPending(b);
      const docs = db.collection("bookings");
      expect(await docs.findOne({ _id: b.id as never })).toEqual({
        _id: b.id,
        eventId: b.eventId,
        userId: b.userId,
        requestId: "r1",
        seats: 3,
        state: "PENDING",
        createdAt: b.createdAt,
        updatedAt: b.updatedAt,
        opToken: b.opToken,
        outbox: [],
      });

      const e = entry({ body: new Uint8Array([0, 1, 255]) });
      const done = await repo.confirm(b.id, b.opToken!, e);
      const stored = await docs.findOne({ _id: b.id as never });
      expect(stored).not.toHaveProperty("opToken"); // unset, not null
      expect(stored).toMatchObject({ state: "CONFIRMED", updatedAt: done!.updatedAt });
      const [se] = stored!.outbox as { body: Binary; occurredAt: Date }[];
      expect(se!.body).toBeInstanceOf(Binary);
      expect(se!.body.toString("hex")).toBe("0001ff");
      expect(se!.occurredAt).toEqual(e.occurredAt);

      await repo.ensureInventory(b.eventId, 10);
      await repo.reserveSeats(b.eventId, b.id, 3);
      expect(await db.collection("inventory").findOne({ _id: b.eventId as never })).toEqual({
        _id: b.eventId,
        capacity: 10,
        seatsAvailable: 7,
        open: true,
        version: 1,
        markers: [reserveMarker(b.id)],
      });
    } finally {
      await cleanup();
    }
  });

  // Two processes = two repositories with their own locks. MongoDB makes each
  // conditional update atomic; FerretDB 1.x loses concurrent updates of one
  // document (FerretDB issue #3040), so there only one process may write.
  it("two repositories on one database never oversell (not on FerretDB 1.x)", async (ctx) => {
    if (ferretdb1) ctx.skip();
    const { db, repo, cleanup } = await freshRepo();
    const other = new MongoBookingRepository(db);
    try {
      const eventId = newId();
      await repo.ensureInventory(eventId, 20);
      const results = await Promise.all(
        Array.from({ length: 60 }, (_, i) => (i % 2 ? repo : other).reserveSeats(eventId, newId(), 1)),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(20);
      expect(await repo.getInventory(eventId)).toMatchObject({ seatsAvailable: 0, version: 20 });
    } finally {
      await cleanup();
    }
  });
});

describeMongoClientLifecycle("bookings", {
  open: (url, database) => MongoBookingRepository.open(url, database),
  on: (db) => new MongoBookingRepository(db),
});
