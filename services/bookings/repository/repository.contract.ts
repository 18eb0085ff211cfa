import { randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { OutboxEntry } from "../../outbox/outbox.js";
import { newId } from "../../runtime/ids.js";
import {
  releaseMarker,
  reserveMarker,
  type BookingRecord,
  type BookingRepository,
  type Inventory,
  type ReserveResult,
} from "./repository.js";

/**
 * The behaviour every BookingRepository adapter must share. Each adapter's
 * test file calls this with a factory for a fresh, empty repository.
 */
export function describeBookingRepositoryContract(
  name: string,
  open: () => Promise<{ repo: BookingRepository; cleanup(): Promise<void> }>,
) {
  describe(`BookingRepository contract: ${name}`, () => {
    let repo: BookingRepository;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ repo, cleanup } = await open());
    });
    afterEach(async () => {
      await cleanup();
    });

    /** Every pending outbox entry, bodies as plain arrays so bytes compare exactly. */
    const outbox = async () => (await repo.outboxSources()[0]!.pending(1000)).map((p) => ({ docId: p.docId, ...plain(p.entry) }));

    /** A booking taken through insertPending and confirm. */
    async function confirmed(init: Partial<BookingRecord> = {}): Promise<BookingRecord> {
      const b = booking(init);
      await repo.insertPending(b);
      return (await repo.confirm(b.id, b.opToken!, entry()))!;
    }

    describe("inventory", () => {
      it("ensureInventory creates an open inventory with every seat free, once", async () => {
        const eventId = newId();
        const want: Inventory = { eventId, capacity: 50, seatsAvailable: 50, open: true, version: 0, markers: [] };
        expect(await repo.ensureInventory(eventId, 50)).toEqual(want);
        await repo.reserveSeats(eventId, newId(), 5);
        // A repeat (even with another capacity) returns what is stored and changes nothing.
        const again = await repo.ensureInventory(eventId, 99);
        expect(again).toMatchObject({ capacity: 50, seatsAvailable: 45, version: 1 });
        expect(await repo.getInventory(eventId)).toEqual(again);
      });

      it("concurrent ensureInventory calls all succeed and agree", async () => {
        const eventId = newId();
        const results = await Promise.all(Array.from({ length: 20 }, () => repo.ensureInventory(eventId, 30)));
        for (const r of results) expect(r).toEqual({ eventId, capacity: 30, seatsAvailable: 30, open: true, version: 0, markers: [] });
      });

      it("getInventory returns undefined for an unknown event", async () => {
        expect(await repo.getInventory(newId())).toBeUndefined();
      });

      it("closeInventory closes an existing inventory, keeping its seats; idempotent", async () => {
        const eventId = newId();
        await repo.ensureInventory(eventId, 10);
        await repo.reserveSeats(eventId, newId(), 4);
        await repo.closeInventory(eventId, 99);
        await repo.closeInventory(eventId, 99);
        expect(await repo.getInventory(eventId)).toMatchObject({ capacity: 10, seatsAvailable: 6, open: false, version: 1 });
        // ensureInventory does not reopen it.
        expect((await repo.ensureInventory(eventId, 10)).open).toBe(false);
      });

      it("closeInventory creates a closed inventory when absent", async () => {
        const eventId = newId();
        await repo.closeInventory(eventId, 10);
        expect(await repo.getInventory(eventId)).toEqual({ eventId, capacity: 10, seatsAvailable: 10, open: false, version: 0, markers: [] });
      });
    });

    describe("reserveSeats", () => {
      it("takes seats, counts the version and leaves the booking's marker", async () => {
        const eventId = newId();
        const [b1, b2] = [newId(), newId()];
        await repo.ensureInventory(eventId, 10);
        expect(await repo.reserveSeats(eventId, b1, 3)).toEqual({ ok: true, fresh: true, seatsAvailable: 7, version: 1 });
        expect(await repo.reserveSeats(eventId, b2, 7)).toEqual({ ok: true, fresh: true, seatsAvailable: 0, version: 2 });
        expect(await repo.getInventory(eventId)).toMatchObject({ seatsAvailable: 0, version: 2, markers: [reserveMarker(b1), reserveMarker(b2)] });
      });

      it("never oversells: 200 concurrent single-seat reserves on 50 seats", async () => {
        const eventId = newId();
        await repo.ensureInventory(eventId, 50);
        const results = await Promise.all(Array.from({ length: 200 }, () => repo.reserveSeats(eventId, newId(), 1)));
        const ok = results.filter((r): r is Extract<ReserveResult, { ok: true }> => r.ok);
        expect(ok).toHaveLength(50);
        expect(results.filter((r) => !r.ok && r.reason === "sold_out")).toHaveLength(150);
        // Each success saw its own state: versions 1..50, seats counting down with them.
        expect(ok.map((r) => r.version).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
        for (const r of ok) expect(r.seatsAvailable).toBe(50 - r.version);
        const inv = await repo.getInventory(eventId);
        expect(inv).toMatchObject({ seatsAvailable: 0, version: 50 });
        expect(inv!.markers).toHaveLength(50);
      });

      it("never oversells with multi-seat reserves either", async () => {
        const eventId = newId();
        await repo.ensureInventory(eventId, 10);
        const results = await Promise.all(Array.from({ length: 30 }, () => repo.reserveSeats(eventId, newId(), 3)));
        expect(results.filter((r) => r.ok)).toHaveLength(3);
        for (const r of results) if (!r.ok) expect(r).toEqual({ ok: false, reason: "sold_out", seatsAvailable: 1 });
        expect(await repo.getInventory(eventId)).toMatchObject({ seatsAvailable: 1, version: 3 });
      });

      it("applies a booking's reserve at most once, even when sold out or closed since", async () => {
        const eventId = newId();
        const b = newId();
        await repo.ensureInventory(eventId, 4);
        expect(await repo.reserveSeats(eventId, b, 2)).toEqual({ ok: true, fresh: true, seatsAvailable: 2, version: 1 });
        expect(await repo.reserveSeats(eventId, b, 2)).toEqual({ ok: true, fresh: false, seatsAvailable: 2, version: 1 });
        await repo.reserveSeats(eventId, newId(), 2);
        expect(await repo.reserveSeats(eventId, b, 2)).toEqual({ ok: true, fresh: false, seatsAvailable: 0, version: 2 });
        await repo.closeInventory(eventId, 4);
        expect(await repo.reserveSeats(eventId, b, 2)).toEqual({ ok: true, fresh: false, seatsAvailable: 0, version: 2 });
        expect((await repo.getInventory(eventId))!.markers).toContain(reserveMarker(b));
      });

      it("concurrent reserves for one booking apply once", async () => {
        const eventId = newId();
        const b = newId();
        await repo.ensureInventory(eventId, 10);
        const results = await Promise.all(Array.from({ length: 10 }, () => repo.reserveSeats(eventId, b, 2)));
        expect(results.filter((r) => r.ok && r.fresh)).toHaveLength(1);
        for (const r of results) expect(r).toMatchObject({ ok: true, seatsAvailable: 8, version: 1 });
        expect(await repo.getInventory(eventId)).toMatchObject({ seatsAvailable: 8, version: 1, markers: [reserveMarker(b)] });
      });

      it("refuses a closed inventory and changes nothing", async () => {
        const eventId = newId();
        await repo.closeInventory(eventId, 10);
        expect(await repo.reserveSeats(eventId, newId(), 1)).toEqual({ ok: false, reason: "closed", seatsAvailable: 10 });
        expect(await repo.getInventory(eventId)).toMatchObject({ seatsAvailable: 10, version: 0, markers: [] });
      });

      it("reports an unknown event and creates nothing", async () => {
        const eventId = newId();
        expect(await repo.reserveSeats(eventId, newId(), 1)).toEqual({ ok: false, reason: "unknown_event", seatsAvailable: 0 });
        expect(await repo.getInventory(eventId)).toBeUndefined();
      });

      it("refuses more seats than are left and changes nothing", async () => {
        const eventId = newId();
        await repo.ensureInventory(eventId, 2);
        expect(await repo.reserveSeats(eventId, newId(), 3)).toEqual({ ok: false, reason: "sold_out", seatsAvailable: 2 });
        expect(await repo.getInventory(eventId)).toMatchObject({ seatsAvailable: 2, version: 0, markers: [] });
      });

      it("rejects a seat count that is not a positive integer", async () => {
        const eventId = newId();
        await repo.ensureInventory(eventId, 10);
        for (const seats of [0, -1, 1.5, Number.NaN]) {
          await expect(repo.reserveSeats(eventId, newId(), seats), String(seats)).rejects.toThrow(RangeError);
        }
        expect(await repo.getInventory(eventId)).toMatchObject({ seatsAvailable: 10, version: 0 });
      });
    });

    describe("releaseSeats", () => {
      it("gives seats back once, counts the version and leaves the booking's marker", async () => {
        const eventId = newId();
        const b = newId();
        await repo.ensureInventory(eventId, 10);
        await repo.reserveSeats(eventId, b, 3);
        expect(await repo.releaseSeats(eventId, b, 3)).toEqual({ seatsAvailable: 10, version: 2, fresh: true });
        expect(await repo.releaseSeats(eventId, b, 3)).toEqual({ seatsAvailable: 10, version: 2, fresh: false });
        expect((await repo.getInventory(eventId))!.markers).toEqual([reserveMarker(b), releaseMarker(b)]);
      });

      it("concurrent releases for one booking apply once", async () => {
        const eventId = newId();
        const b = newId();
        await repo.ensureInventory(eventId, 10);
        await repo.reserveSeats(eventId, newId(), 6);
        const results = await Promise.all(Array.from({ length: 10 }, () => repo.releaseSeats(eventId, b, 2)));
        expect(results.filter((r) => r.fresh)).toHaveLength(1);
        for (const r of results) expect(r).toMatchObject({ seatsAvailable: 6, version: 2 });
      });

      it("never goes above capacity", async () => {
        const eventId = newId();
        await repo.ensureInventory(eventId, 10);
        await repo.reserveSeats(eventId, newId(), 2);
        // More than was ever taken: stops at capacity (and still counts as applied).
        expect(await repo.releaseSeats(eventId, newId(), 5)).toEqual({ seatsAvailable: 10, version: 2, fresh: true });
        expect(await repo.releaseSeats(eventId, newId(), 1)).toEqual({ seatsAvailable: 10, version: 3, fresh: true });
        // Concurrent releases can't push it over either.
        await repo.reserveSeats(eventId, newId(), 4);
        await Promise.all(Array.from({ length: 10 }, () => repo.releaseSeats(eventId, newId(), 1)));
        expect(await repo.getInventory(eventId)).toMatchObject({ seatsAvailable: 10, version: 14 });
      });

      it("works on a closed inventory", async () => {
        const eventId = newId();
        const b = newId();
        await repo.ensureInventory(eventId, 10);
        await repo.reserveSeats(eventId, b, 4);
        await repo.closeInventory(eventId, 10);
        expect(await repo.releaseSeats(eventId, b, 4)).toEqual({ seatsAvailable: 10, version: 2, fresh: true });
      });

      it("rejects an unknown event and creates nothing", async () => {
        const eventId = newId();
        await expect(repo.releaseSeats(eventId, newId(), 1)).rejects.toThrow();
        expect(await repo.getInventory(eventId)).toBeUndefined();
      });
    });

    describe("revertSeats", () => {
      it("undoes a reserve while its marker exists, once", async () => {
        const eventId = newId();
        const b = newId();
        await repo.ensureInventory(eventId, 10);
        await repo.reserveSeats(eventId, b, 3);
        await repo.revertSeats(eventId, reserveMarker(b), 3);
        expect(await repo.getInventory(eventId)).toMatchObject({ seatsAvailable: 10, version: 2, markers: [] });
        await repo.revertSeats(eventId, reserveMarker(b), 3);
        expect(await repo.getInventory(eventId)).toMatchObject({ seatsAvailable: 10, version: 2 });
      });

      it("undoes a release, leaving other markers", async () => {
        const eventId = newId();
        const b = newId();
        await repo.ensureInventory(eventId, 10);
        await repo.reserveSeats(eventId, b, 4);
        await repo.releaseSeats(eventId, b, 4);
        await repo.revertSeats(eventId, releaseMarker(b), -4);
        expect(await repo.getInventory(eventId)).toMatchObject({ seatsAvailable: 6, version: 3, markers: [reserveMarker(b)] });
      });

      it("stores the announcing entry in the inventory's outbox by the same update, with the count after it; none when not applied", async () => {
        const eventId = newId();
        const b = newId();
        await repo.ensureInventory(eventId, 10);
        await repo.reserveSeats(eventId, b, 3);
        const seen: Array<{ seatsAvailable: number; version: number }> = [];
        const announced = entry({ routingKey: "booking.reservation_undone" });
        const change = await repo.revertSeats(eventId, reserveMarker(b), 3, (c) => (seen.push(c), announced));
        expect(change).toMatchObject({ seatsAvailable: 10, version: 2 });
        expect(seen).toEqual([{ seatsAvailable: 10, version: 2 }]);
        const inventoryOutbox = repo.outboxSources().find((o) => o.name === "inventory")!;
        const pending = await inventoryOutbox.pending(10);
        expect(pending.map((p) => ({ docId: p.docId, ...plain(p.entry) }))).toEqual([{ docId: eventId, ...plain(announced) }]);
        // Applied once: a repeat finds no marker, changes nothing and announces nothing.
        expect(await repo.revertSeats(eventId, reserveMarker(b), 3, () => entry({ routingKey: "booking.reservation_undone" }))).toBeUndefined();
        expect(await inventoryOutbox.pending(10)).toHaveLength(1);
        await inventoryOutbox.markSent(eventId, announced.id);
        expect(await inventoryOutbox.pending(10)).toEqual([]);
        expect(await repo.getInventory(eventId)).toMatchObject({ seatsAvailable: 10, version: 2, markers: [] });
      });

      it("concurrent reverts apply once", async () => {
        const eventId = newId();
        const b = newId();
        await repo.ensureInventory(eventId, 10);
        await repo.reserveSeats(eventId, b, 3);
        await Promise.all(Array.from({ length: 10 }, () => repo.revertSeats(eventId, reserveMarker(b), 3)));
        expect(await repo.getInventory(eventId)).toMatchObject({ seatsAvailable: 10, version: 2, markers: [] });
      });

      it("does nothing without the marker or the inventory", async () => {
        const eventId = newId();
        await repo.ensureInventory(eventId, 10);
        await repo.reserveSeats(eventId, newId(), 3);
        await repo.revertSeats(eventId, reserveMarker(newId()), 3);
        expect(await repo.getInventory(eventId)).toMatchObject({ seatsAvailable: 7, version: 1 });
        await expect(repo.revertSeats(newId(), reserveMarker(newId()), 3)).resolves.toBeUndefined();
      });

      it("stays within [0, capacity]", async () => {
        const eventId = newId();
        const [x, y, z] = [newId(), newId(), newId()];
        await repo.ensureInventory(eventId, 5);
        await repo.releaseSeats(eventId, x, 1); // clamped: still 5
        await repo.reserveSeats(eventId, y, 5);
        await repo.revertSeats(eventId, releaseMarker(x), -1);
        expect(await repo.getInventory(eventId)).toMatchObject({ seatsAvailable: 0, version: 3, markers: [reserveMarker(y)] });
        await repo.reserveSeats(eventId, z, 1).then((r) => expect(r.ok).toBe(false));
        await repo.releaseSeats(eventId, newId(), 5); // 5 again
        await repo.revertSeats(eventId, reserveMarker(y), 5);
        expect(await repo.getInventory(eventId)).toMatchObject({ seatsAvailable: 5, version: 5 });
      });
    });

    describe("markers", () => {
      it("are visible until cleared; clearing changes no seats", async () => {
        const eventId = newId();
        const b = newId();
        await repo.ensureInventory(eventId, 10);
        await repo.reserveSeats(eventId, b, 2);
        await repo.releaseSeats(eventId, b, 2);
        expect(await repo.hasMarker(eventId, reserveMarker(b))).toBe(true);
        expect(await repo.hasMarker(eventId, releaseMarker(b))).toBe(true);
        // It answers the inventory as the removal left it.
        expect(await repo.clearMarker(eventId, reserveMarker(b))).toEqual({
          eventId,
          capacity: 10,
          seatsAvailable: 10,
          open: true,
          version: 2,
          markers: [releaseMarker(b)],
        });
        expect(await repo.hasMarker(eventId, reserveMarker(b))).toBe(false);
        expect(await repo.hasMarker(eventId, releaseMarker(b))).toBe(true);
        await repo.clearMarker(eventId, releaseMarker(b));
        await repo.clearMarker(eventId, releaseMarker(b)); // idempotent
        expect(await repo.getInventory(eventId)).toMatchObject({ seatsAvailable: 10, version: 2, markers: [] });
      });

      it("hasMarker and clearMarker accept an unknown event", async () => {
        expect(await repo.hasMarker(newId(), "reserve:x")).toBe(false);
        await expect(repo.clearMarker(newId(), "reserve:x")).resolves.toBeUndefined();
      });

      it("listMarked returns the inventories holding markers, by event id", async () => {
        const t = Date.now();
        const [e1, e2, e3] = [newId(t), newId(t + 1), newId(t + 2)];
        for (const e of [e3, e1, e2]) await repo.ensureInventory(e, 10);
        await repo.reserveSeats(e3, newId(), 1);
        await repo.reserveSeats(e1, newId(), 1);
        expect((await repo.listMarked(10)).map((i) => i.eventId)).toEqual([e1, e3]);
        expect((await repo.listMarked(1)).map((i) => i.eventId)).toEqual([e1]);
        expect(await repo.listMarked(0)).toEqual([]);
        const [marked] = await repo.listMarked(1);
        expect(marked).toEqual(await repo.getInventory(e1));
        await repo.clearMarker(e1, marked!.markers[0]!);
        expect((await repo.listMarked(10)).map((i) => i.eventId)).toEqual([e3]);
      });
    });

    describe("insertPending", () => {
      it("stores every field", async () => {
        const b = booking({ seats: 4, requestId: "req-1" });
        expect(await repo.insertPending(b)).toEqual({ inserted: true });
        expect(await repo.getBooking(b.id)).toEqual(b);
      });

      it("getBooking returns undefined for an unknown id", async () => {
        expect(await repo.getBooking(newId())).toBeUndefined();
      });

      it("returns the existing booking for the user's repeated request_id and stores nothing", async () => {
        const first = booking();
        await repo.insertPending(first);
        const repeat = booking({ userId: first.userId, requestId: first.requestId, seats: 9 });
        expect(await repo.insertPending(repeat)).toEqual({ inserted: false, existing: first });
        expect(await repo.getBooking(repeat.id)).toBeUndefined();
        // Also once it is no longer PENDING.
        const done = (await repo.confirm(first.id, first.opToken!, entry()))!;
        expect(await repo.insertPending(booking({ userId: first.userId, requestId: first.requestId }))).toEqual({ inserted: false, existing: done });
      });

      it("inserts exactly one of 20 concurrent requests with the same request_id", async () => {
        const userId = newId();
        const requestId = newId();
        const attempts = Array.from({ length: 20 }, () => booking({ userId, requestId }));
        const results = await Promise.all(attempts.map((b) => repo.insertPending(b)));
        const winners = attempts.filter((_, i) => results[i]!.inserted);
        expect(winners).toHaveLength(1);
        for (const r of results) if (!r.inserted) expect(r.existing).toEqual(winners[0]);
        expect(await repo.listStale(new Date(Date.now() + 60_000), 100)).toEqual([winners[0]]);
      });

      it("keeps another user's booking with the same request_id separate", async () => {
        const a = booking({ requestId: "same" });
        const b = booking({ requestId: "same" });
        expect(await repo.insertPending(a)).toEqual({ inserted: true });
        expect(await repo.insertPending(b)).toEqual({ inserted: true });
        expect(await repo.getBooking(b.id)).toEqual(b);
      });

      it("rejects a booking id that is taken", async () => {
        const a = booking();
        await repo.insertPending(a);
        await expect(repo.insertPending(booking({ id: a.id }))).rejects.toThrow();
        expect(await repo.getBooking(a.id)).toEqual(a);
      });
    });

    describe("deletePending", () => {
      it("removes a PENDING booking owned by the token, freeing its request_id", async () => {
        const b = booking();
        await repo.insertPending(b);
        await repo.deletePending(b.id, newId()); // not the owner
        expect(await repo.getBooking(b.id)).toEqual(b);
        await repo.deletePending(b.id, b.opToken!);
        expect(await repo.getBooking(b.id)).toBeUndefined();
        expect(await repo.insertPending(booking({ userId: b.userId, requestId: b.requestId }))).toEqual({ inserted: true });
      });

      it("leaves a booking that is no longer PENDING", async () => {
        const b = booking();
        await repo.insertPending(b);
        await repo.confirm(b.id, b.opToken!, entry());
        await repo.deletePending(b.id, b.opToken!);
        expect((await repo.getBooking(b.id))?.state).toBe("CONFIRMED");
      });
    });

    describe("state transitions", () => {
      it("confirm: PENDING and owned -> CONFIRMED with exactly its entry", async () => {
        const b = booking();
        await repo.insertPending(b);
        const e = entry({ traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" });
        const t0 = Date.now();
        expect(await repo.confirm(b.id, newId(), entry())).toBeUndefined(); // not the owner
        const got = await repo.confirm(b.id, b.opToken!, e);
        const { opToken: _, ...rest } = b;
        expect(got).toEqual({ ...rest, state: "CONFIRMED", reservedBy: b.opToken, updatedAt: got!.updatedAt });
        expect(got!.updatedAt.getTime()).toBeGreaterThanOrEqual(t0);
        expect(await repo.getBooking(b.id)).toEqual(got);
        expect(await outbox()).toEqual([{ docId: b.id, ...plain(e) }]);
        // Only once; and never for an unknown booking.
        expect(await repo.confirm(b.id, b.opToken!, entry())).toBeUndefined();
        expect(await repo.confirm(newId(), b.opToken!, entry())).toBeUndefined();
        expect(await outbox()).toHaveLength(1);
      });

      it("beginCancel: CONFIRMED -> CANCELLING owned by the token, no entry", async () => {
        const b = await confirmed();
        const before = await outbox();
        const t0 = Date.now();
        const got = await repo.beginCancel(b.id, "tok");
        expect(got).toEqual({ ...b, state: "CANCELLING", opToken: "tok", updatedAt: got!.updatedAt });
        expect(got!.updatedAt.getTime()).toBeGreaterThanOrEqual(t0);
        expect(await repo.getBooking(b.id)).toEqual(got);
        expect(await repo.beginCancel(b.id, "other")).toBeUndefined(); // already CANCELLING
        const pending = booking();
        await repo.insertPending(pending);
        expect(await repo.beginCancel(pending.id, "tok")).toBeUndefined();
        expect(await repo.beginCancel(newId(), "tok")).toBeUndefined();
        expect(await outbox()).toEqual(before);
      });

      it("takeOver: swaps the token of a PENDING or CANCELLING booking and bumps updatedAt", async () => {
        const old = new Date(Date.now() - 3_600_000);
        const pending = booking({ createdAt: old, updatedAt: old });
        await repo.insertPending(pending);
        expect(await repo.takeOver(pending.id, "wrong", "new")).toBeUndefined();
        const taken = await repo.takeOver(pending.id, pending.opToken!, "new");
        expect(taken).toEqual({ ...pending, opToken: "new", updatedAt: taken!.updatedAt });
        expect(taken!.updatedAt.getTime()).toBeGreaterThan(old.getTime());
        // The old owner has lost it.
        expect(await repo.confirm(pending.id, pending.opToken!, entry())).toBeUndefined();
        await repo.deletePending(pending.id, pending.opToken!);
        expect(await repo.getBooking(pending.id)).toEqual(taken);

        const cancelling = await confirmed();
        await repo.beginCancel(cancelling.id, "a");
        expect((await repo.takeOver(cancelling.id, "a", "b"))?.opToken).toBe("b");
        expect(await repo.finishCancel(cancelling.id, "a", entry())).toBeUndefined();
        expect((await repo.getBooking(cancelling.id))?.state).toBe("CANCELLING");

        const done = await confirmed();
        expect(await repo.takeOver(done.id, "", "x")).toBeUndefined();
        expect(await outbox()).toHaveLength(2); // the two confirmations only
      });

      it("finishCancel records whose release counts when recovery adopts an earlier owner's", async () => {
        const b = await confirmed();
        await repo.beginCancel(b.id, "tok");
        const got = await repo.finishCancel(b.id, "tok", entry(), "earlier");
        expect(got?.releasedBy).toBe("earlier");
      });

      it("finishCancel: CANCELLING and owned -> CANCELLED with exactly its entry", async () => {
        const b = await confirmed();
        expect(await repo.finishCancel(b.id, "tok", entry())).toBeUndefined(); // still CONFIRMED
        await repo.beginCancel(b.id, "tok");
        expect(await repo.finishCancel(b.id, "other", entry())).toBeUndefined();
        const before = await outbox();
        const e = entry();
        const got = await repo.finishCancel(b.id, "tok", e);
        expect(got).toEqual({ ...b, state: "CANCELLED", releasedBy: "tok", updatedAt: got!.updatedAt });
        expect(await repo.getBooking(b.id)).toEqual(got);
        expect(await outbox()).toEqual([...before, { docId: b.id, ...plain(e) }]);
        expect(await repo.finishCancel(b.id, "tok", entry())).toBeUndefined();
        expect(await outbox()).toHaveLength(before.length + 1);
      });

      it("cancelForEvent: CONFIRMED or CANCELLING -> CANCELLED with exactly its entry", async () => {
        const a = await confirmed();
        const b = await confirmed();
        await repo.beginCancel(b.id, "tok");
        const pending = booking();
        await repo.insertPending(pending);
        const before = await outbox();

        const [ea, eb] = [entry(), entry()];
        const gotA = await repo.cancelForEvent(a.id, ea);
        const gotB = await repo.cancelForEvent(b.id, eb);
        expect(gotA).toEqual({ ...a, state: "CANCELLED", updatedAt: gotA!.updatedAt });
        expect(gotB).toEqual({ ...b, state: "CANCELLED", updatedAt: gotB!.updatedAt }); // token gone
        expect(await repo.cancelForEvent(a.id, entry())).toBeUndefined();
        expect(await repo.cancelForEvent(pending.id, entry())).toBeUndefined();
        expect(await repo.cancelForEvent(newId(), entry())).toBeUndefined();
        expect(await outbox()).toEqual([...before, { docId: a.id, ...plain(ea) }, { docId: b.id, ...plain(eb) }]);
      });

      it("concurrent transitions of one booking: exactly one wins", async () => {
        const b = await confirmed();
        const results = await Promise.all(Array.from({ length: 10 }, (_, i) => repo.beginCancel(b.id, `t${i}`)));
        const winners = results.filter((r) => r !== undefined);
        expect(winners).toHaveLength(1);
        expect(await repo.getBooking(b.id)).toEqual(winners[0]);
        const ends = await Promise.all([
          repo.finishCancel(b.id, winners[0]!.opToken!, entry()),
          ...Array.from({ length: 5 }, () => repo.cancelForEvent(b.id, entry())),
        ]);
        expect(ends.filter((r) => r !== undefined)).toHaveLength(1);
        expect(await outbox()).toHaveLength(2); // confirmed + one cancelled
      });

      it("markSent racing state changes loses neither", async () => {
        const all = await Promise.all(Array.from({ length: 30 }, () => confirmed()));
        const sent = await repo.outboxSources()[0]!.pending(100);
        const later = all.map(() => entry());
        await Promise.all([
          ...sent.map((p) => repo.outboxSources()[0]!.markSent(p.docId, p.entry.id)),
          ...all.map((b, i) => repo.cancelForEvent(b.id, later[i]!)),
        ]);
        for (const b of all) expect((await repo.getBooking(b.id))?.state).toBe("CANCELLED");
        expect(await outbox()).toEqual(all.map((b, i) => ({ docId: b.id, ...plain(later[i]!) })));
      });

      it("markSent removes an entry and leaves the booking as it is", async () => {
        const b = await confirmed();
        await repo.beginCancel(b.id, "tok");
        const cancelled = await repo.finishCancel(b.id, "tok", entry());
        const [first, second] = await repo.outboxSources()[0]!.pending(10);
        await repo.outboxSources()[0]!.markSent(first!.docId, first!.entry.id);
        expect(await outbox()).toEqual([{ docId: b.id, ...plain(second!.entry) }]);
        expect(await repo.getBooking(b.id)).toEqual(cancelled);
      });
    });

    describe("listings", () => {
      it("listByUser pages newest first, without PENDING or other users' bookings", async () => {
        const userId = newId();
        const base = Date.now() - 10_000;
        const mine: BookingRecord[] = [];
        for (let i = 0; i < 5; i++) mine.push(await confirmed({ id: newId(base + i), userId }));
        await repo.beginCancel(mine[1]!.id, "tok");
        await repo.cancelForEvent(mine[3]!.id, entry());
        await repo.insertPending(booking({ id: newId(base + 10), userId })); // PENDING: hidden
        await confirmed({ id: newId(base + 11) }); // someone else's
        const want = await Promise.all(mine.map((b) => repo.getBooking(b.id)));
        want.reverse();

        const p1 = await repo.listByUser(userId, { limit: 2 });
        expect(p1).toEqual({ items: want.slice(0, 2), more: true });
        const p2 = await repo.listByUser(userId, { limit: 2, before: p1.items[1]!.id });
        expect(p2).toEqual({ items: want.slice(2, 4), more: true });
        const p3 = await repo.listByUser(userId, { limit: 2, before: p2.items[1]!.id });
        expect(p3).toEqual({ items: want.slice(4), more: false });
        expect(await repo.listByUser(userId, { limit: 5 })).toEqual({ items: want, more: false });
        expect(await repo.listByUser(newId(), { limit: 5 })).toEqual({ items: [], more: false });
      });

      it("listByEvent filters by event and state, by id, up to the limit", async () => {
        const eventId = newId();
        const base = Date.now() - 10_000;
        const [c1, c2, x] = [
          await confirmed({ id: newId(base + 1), eventId }),
          await confirmed({ id: newId(base + 2), eventId }),
          await confirmed({ id: newId(base + 3), eventId }),
        ];
        await repo.beginCancel(x.id, "tok");
        const p = booking({ id: newId(base), eventId });
        await repo.insertPending(p);
        await confirmed(); // another event
        const ids = async (states: BookingRecord["state"][], limit = 10) =>
          (await repo.listByEvent(eventId, states, limit)).map((b) => b.id);
        expect(await ids(["CONFIRMED"])).toEqual([c1.id, c2.id]);
        expect(await ids(["CONFIRMED", "CANCELLING"])).toEqual([c1.id, c2.id, x.id]);
        expect(await ids(["CONFIRMED", "CANCELLING"], 2)).toEqual([c1.id, c2.id]);
        expect(await ids(["PENDING"])).toEqual([p.id]);
        expect(await ids(["CANCELLED"])).toEqual([]);
        expect(await ids(["CONFIRMED"], 0)).toEqual([]);
        expect((await repo.listByEvent(eventId, ["PENDING"], 10))[0]).toEqual(p);
      });

      it("listStale finds PENDING and CANCELLING bookings not updated since the cutoff", async () => {
        const now = Date.now();
        const at = (msAgo: number) => new Date(now - msAgo);
        const oldPending = booking({ createdAt: at(7_200_000), updatedAt: at(7_200_000) });
        const olderPending = booking({ createdAt: at(9_000_000), updatedAt: at(9_000_000) });
        const freshPending = booking({ createdAt: at(1000), updatedAt: at(1000) });
        for (const b of [oldPending, olderPending, freshPending]) await repo.insertPending(b);
        const cancelling = await confirmed({ createdAt: at(7_200_000), updatedAt: at(7_200_000) });
        await repo.beginCancel(cancelling.id, "tok");
        await confirmed({ createdAt: at(7_200_000), updatedAt: at(7_200_000) }); // CONFIRMED: never stale
        const cancelled = await confirmed({ createdAt: at(7_200_000), updatedAt: at(7_200_000) });
        await repo.cancelForEvent(cancelled.id, entry());

        const ids = async (cutoff: Date, limit = 10) => (await repo.listStale(cutoff, limit)).map((b) => b.id);
        expect(await ids(at(3_600_000))).toEqual([olderPending.id, oldPending.id]); // oldest first
        expect(await ids(at(3_600_000), 1)).toEqual([olderPending.id]);
        expect(await ids(at(10_000_000))).toEqual([]);
        expect(await ids(new Date(Date.now() + 60_000))).toEqual([olderPending.id, oldPending.id, freshPending.id, cancelling.id]);
        expect((await repo.listStale(at(3_600_000), 1))[0]).toEqual(olderPending);
      });
    });

    it("never aliases stored state", async () => {
      const eventId = newId();
      const b = booking({ eventId });
      const want = { ...b, createdAt: new Date(b.createdAt), updatedAt: new Date(b.updatedAt) };
      await repo.insertPending(b);
      // Mutating what was passed in...
      b.seats = 99;
      b.createdAt.setTime(0);
      b.updatedAt.setTime(0);
      // ...and everything handed out.
      const existing = await repo.insertPending(booking({ userId: b.userId, requestId: b.requestId }));
      const handedOut = [await repo.getBooking(b.id), (await repo.listStale(new Date(Date.now() + 60_000), 10))[0]];
      if (!existing.inserted) handedOut.push(existing.existing);
      for (const r of handedOut) {
        r!.seats = 77;
        r!.createdAt.setTime(1);
      }
      expect(await repo.getBooking(b.id)).toEqual(want);

      const e = entry();
      const wantEntry = plain(e);
      const got = (await repo.confirm(b.id, want.opToken!, e))!;
      got.state = "PENDING";
      got.updatedAt.setTime(0);
      e.body[0] = e.body[0]! ^ 0xff;
      e.occurredAt.setTime(0);
      const stored = (await repo.getBooking(b.id))!;
      expect(stored.state).toBe("CONFIRMED");
      expect(stored.updatedAt.getTime()).toBeGreaterThan(0);
      expect(await outbox()).toEqual([{ docId: b.id, ...wantEntry }]);
      (await repo.outboxSources()[0]!.pending(1))[0]!.entry.body[0] = 0;
      expect(await outbox()).toEqual([{ docId: b.id, ...wantEntry }]);
      for (const r of (await repo.listByUser(b.userId, { limit: 10 })).items) r.state = "CANCELLED";
      expect((await repo.getBooking(b.id))?.state).toBe("CONFIRMED");

      const invs = [await repo.ensureInventory(eventId, 10)];
      await repo.reserveSeats(eventId, b.id, 2);
      invs.push((await repo.getInventory(eventId))!, ...(await repo.listMarked(10)));
      for (const inv of invs) {
        inv.seatsAvailable = 0;
        inv.markers.push("x");
        inv.markers.length = 0;
      }
      expect(await repo.getInventory(eventId)).toEqual({
        eventId,
        capacity: 10,
        seatsAvailable: 8,
        open: true,
        version: 1,
        markers: [reserveMarker(b.id)],
      });
    });

    it("ping resolves", async () => {
      await expect(repo.ping()).resolves.toBeUndefined();
    });
  });
}

/** A PENDING booking with its operation's token; times at millisecond precision, as stored. */
export function booking(init: Partial<BookingRecord> = {}): BookingRecord {
  const at = new Date(Date.now() - 5_000);
  return {
    id: newId(),
    eventId: newId(),
    userId: newId(),
    requestId: newId(),
    seats: 2,
    state: "PENDING",
    createdAt: at,
    updatedAt: at,
    opToken: newId(),
    ...init,
  };
}

let entries = 0;

/**
 * An outbox entry whose body has every kind of byte a protobuf encoding can
 * hold. Each occurs a millisecond after the previous one, so pending() lists
 * them in creation order.
 */
export function entry(init: Partial<OutboxEntry> = {}): OutboxEntry {
  return {
    id: newId(),
    routingKey: "booking.confirmed",
    type: "myevents.v1.BookingConfirmed",
    body: new Uint8Array([0x00, 0xff, 0x80, 0x0a, ...randomBytes(28)]),
    occurredAt: new Date(Date.UTC(2030, 0, 1) + ++entries),
    ...init,
  };
}

/** The entry with its body as a plain array: compares byte for byte, whatever the byte container. */
function plain(e: OutboxEntry) {
  return { ...e, body: [...e.body], occurredAt: new Date(e.occurredAt) };
}
