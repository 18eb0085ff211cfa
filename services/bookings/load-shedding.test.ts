// Load shedding (issue #8) against the real FerretDB: a burst far over what
// one event's inventory can serve is answered at once for the excess
// (Unavailable, nothing written), the admitted calls finish, the invariants
// hold, and retries with the same request_ids book every seat once.
import { Code, ConnectError } from "@connectrpc/connect";
import { performance } from "node:perf_hooks";
import { afterEach, describe, expect, it } from "vitest";
import { mongoRepositoryFixture } from "../../test/support/backing.js";
import { newId } from "../runtime/ids.js";
import { createLogger } from "../runtime/logger.js";
import { BookingAdmission } from "./admission.js";
import { Bookings, type EventLookup } from "./bookings.js";
import { MongoBookingRepository, type BookingDoc } from "./repository/mongo.js";

const silent = createLogger("error", {}, () => {});
const CAPACITY = 1_000;
const BURST = 300;
const MAX_PER_EVENT = 16;

const fixture = mongoRepositoryFixture("shedding", (db) => new MongoBookingRepository(db));
let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

async function setup() {
  const { db, repo, cleanup: drop } = await fixture.fresh();
  cleanup = drop;
  const eventId = newId();
  const events: EventLookup = { find: async (id) => (id === eventId ? { capacity: CAPACITY, cancelled: false } : undefined) };
  const admission = new BookingAdmission({ maxPerEvent: MAX_PER_EVENT, maxInFlight: 1_000 });
  const bookings = new Bookings(repo, events, silent, { admission });
  await repo.ensureInventory(eventId, CAPACITY);
  return { db, repo, bookings, admission, eventId };
}

type Outcome = { requestId: string; user: string; ok?: string; code?: Code; ms: number };

describe("CreateBooking load shedding (FerretDB)", () => {
  it(`answers a ${BURST}-booking burst on one event at once beyond ${MAX_PER_EVENT} in progress, keeps every invariant, and retries book each seat once`, async () => {
    const { db, repo, bookings, admission, eventId } = await setup();
    const t0 = performance.now();
    const burst = await Promise.all(
      Array.from({ length: BURST }, async (_, i): Promise<Outcome> => {
        const requestId = newId();
        const user = `user${i % 25}`;
        try {
          const record = await bookings.create(user, eventId, 1, requestId, Date.now() + 30_000);
          return { requestId, user, ok: record.id, ms: performance.now() - t0 };
        } catch (err) {
          return { requestId, user, code: ConnectError.from(err).code, ms: performance.now() - t0 };
        }
      }),
    );
    const admitted = burst.filter((o) => o.ok);
    const refused = burst.filter((o) => !o.ok);
    // Only the documented retryable code, and exactly the excess over the bound was refused.
    expect(new Set(refused.map((o) => o.code))).toEqual(new Set([Code.Unavailable]));
    expect(admitted).toHaveLength(MAX_PER_EVENT);
    // Refusals came back before the first admitted booking finished: no wait in a queue.
    const firstAdmittedDone = Math.min(...admitted.map((o) => o.ms));
    expect(Math.max(...refused.map((o) => o.ms))).toBeLessThan(firstAdmittedDone);
    expect(admission.inProgress()).toBe(0);

    // Nothing of the refused calls was written; the admitted ones are confirmed with their seats taken.
    const bookingsColl = db.collection<BookingDoc>("bookings");
    expect(await bookingsColl.countDocuments({ requestId: { $in: refused.map((o) => o.requestId) } })).toBe(0);
    expect(await bookingsColl.countDocuments({ state: "CONFIRMED" })).toBe(MAX_PER_EVENT);
    expect((await repo.getInventory(eventId))?.seatsAvailable).toBe(CAPACITY - MAX_PER_EVENT);

    // Clients retry the refused calls with the same request_ids, backing off on Unavailable
    // (exponential, with jitter, as a client should).
    const giveUpAt = Date.now() + 90_000;
    const retried = await Promise.all(
      refused.map(async (o) => {
        for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
          try {
            return await bookings.create(o.user, eventId, 1, o.requestId, Date.now() + 30_000);
          } catch (err) {
            if (ConnectError.from(err).code !== Code.Unavailable || Date.now() > giveUpAt) throw err;
            await new Promise((r) => setTimeout(r, delay / 2 + Math.random() * delay));
          }
        }
      }),
    );
    expect(retried).toHaveLength(refused.length);
    // A retry of an already confirmed request returns the same booking and takes no seat.
    const again = await bookings.create(admitted[0]!.user, eventId, 1, admitted[0]!.requestId);
    expect(again.id).toBe(admitted[0]!.ok);

    // Invariants: one booking per request_id, no PENDING left, sold + available = capacity.
    const all = await bookingsColl.find({}, { projection: { outbox: 0 } }).toArray();
    expect(all).toHaveLength(BURST);
    expect(new Set(all.map((b) => `${b.userId}/${b.requestId}`)).size).toBe(BURST);
    expect(all.every((b) => b.state === "CONFIRMED")).toBe(true);
    const inventory = await repo.getInventory(eventId);
    expect(inventory?.seatsAvailable).toBe(CAPACITY - BURST);
    expect(inventory?.markers).toEqual([]);
    // Every confirmation's domain event is in the outbox, once.
    const pending = await repo.outboxSources()[0]!.pending(1_000);
    expect(pending).toHaveLength(BURST);
    expect(new Set(pending.map((p) => p.docId)).size).toBe(BURST);
  }, 120_000);

  it("refuses at once, writing nothing, a call whose deadline is shorter than the wait behind the calls ahead", async () => {
    const { db, bookings, eventId } = await setup();
    // Bookings in progress, one of them finished: the admission knows what one takes,
    // and the others are still ahead (they queue on the event's inventory).
    const ahead = Array.from({ length: 6 }, () => bookings.create("ahead", eventId, 1, newId()));
    await Promise.race(ahead);
    let aheadSettled = 0;
    for (const call of ahead) call.then(() => aheadSettled++, () => aheadSettled++);
    const requestId = newId();
    const err = await bookings.create("hurried", eventId, 1, requestId, Date.now() + 1).catch((e: unknown) => ConnectError.from(e));
    // "At once": refused while calls ahead of it were still in progress, not after its turn came.
    const settledAtRefusal = aheadSettled;
    await Promise.all(ahead);
    expect(settledAtRefusal).toBeLessThan(ahead.length);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.Unavailable);
    expect((err as ConnectError).rawMessage).toMatch(/deadline/);
    expect(await db.collection("bookings").countDocuments({ requestId })).toBe(0);
    // With time to spare the same request books.
    const booked = await bookings.create("hurried", eventId, 1, requestId, Date.now() + 30_000);
    expect(booked.state).toBe("CONFIRMED");
  });
});
