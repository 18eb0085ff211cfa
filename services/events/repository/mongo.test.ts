import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { describeMongoClientLifecycle, mongoRepositoryFixture } from "../../../test/support/backing.js";
import { EventSchema, EventState } from "../../../gen/myevents/v1/event_pb.js";
import { newId } from "../../runtime/ids.js";
import { MongoEventRepository } from "./mongo.js";
import { describeEventRepositoryContract, note } from "./repository.contract.js";

// One client for the file; every test gets its own database, dropped afterwards.
const fixture = mongoRepositoryFixture("events", (db) => new MongoEventRepository(db));
const freshRepo = fixture.fresh;

describeEventRepositoryContract("MongoEventRepository", freshRepo);

describe("MongoEventRepository (Mongo only)", () => {
  it("ensureIndexes is idempotent and creates the listEvents indexes", async () => {
    const { db, repo, cleanup } = await freshRepo();
    try {
      await repo.ensureIndexes(); // a second time at the next startup
      const keys = (await db.collection("events").listIndexes().toArray()).map((i) => i.key as object);
      expect(keys).toHaveLength(4);
      expect(keys).toEqual(
        expect.arrayContaining([{ _id: 1 }, { startTime: 1, _id: 1 }, { locationId: 1, startTime: 1, _id: 1 }, { "outbox.occurredAt": 1 }]),
      );
    } finally {
      await cleanup();
    }
  });

  it("stores events in the documented shape", async () => {
    const { db, repo, cleanup } = await freshRepo();
    try {
      const id = newId();
      const locationId = newId();
      const start = Date.UTC(2030, 0, 1, 20);
      await repo.createEvent(
        create(EventSchema, {
          id,
          name: "Gig",
          locationId,
          hall: "A",
          startTime: timestampFromMs(start),
          capacity: 10,
          seatsAvailable: 10,
          state: EventState.SCHEDULED,
        }),
        note("event.created"),
      );
      const { outbox, ...stored } = (await db.collection("events").findOne({ _id: id as never }))!;
      expect(outbox).toHaveLength(1);
      expect(stored).toEqual({
        _id: id,
        name: "Gig",
        locationId,
        hall: "A",
        startTime: new Date(start),
        capacity: 10,
        seatsAvailable: 10,
        state: "SCHEDULED",
      });
      await repo.cancelEvent(id, note("event.cancelled"));
      expect((await db.collection("events").findOne({ _id: id as never }))?.state).toBe("CANCELLED");
    } finally {
      await cleanup();
    }
  });
});

describeMongoClientLifecycle("events", {
  open: (url, database) => MongoEventRepository.open(url, database),
  on: (db) => new MongoEventRepository(db),
});
