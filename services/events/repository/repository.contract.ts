import { clone, create, equals, type MessageInitShape } from "@bufbuild/protobuf";
import { TimestampSchema, timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EventSchema, EventState, type Event } from "../../../gen/myevents/v1/event_pb.js";
import { HallSchema, LocationSchema, type Location } from "../../../gen/myevents/v1/location_pb.js";
import type { OutboxEntry } from "../../outbox/outbox.js";
import { newId } from "../../runtime/ids.js";
import {
  DuplicateIdError,
  type EventCursor,
  type EventFilter,
  type EventRepository,
  type PageResult,
} from "./repository.js";

/**
 * The behaviour every EventRepository adapter must share. Each adapter's
 * test file calls this with a factory for a fresh, empty repository.
 */
export function describeEventRepositoryContract(
  name: string,
  open: () => Promise<{ repo: EventRepository; cleanup(): Promise<void> }>,
) {
  describe(`EventRepository contract: ${name}`, () => {
    let repo: EventRepository;
    let cleanup: () => Promise<void>;

    beforeEach(async () => {
      ({ repo, cleanup } = await open());
    });
    afterEach(async () => {
      await cleanup();
    });

    describe("locations", () => {
      it("round-trips every field, halls included", async () => {
        const l = location({ name: "Olympiahalle", address: "Spiridon-Louis-Ring 21", country: "DE" });
        await repo.createLocation(l, note("location.created"));
        const got = await repo.getLocation(l.id);
        expect(got).toEqual(l);
        expect(equals(LocationSchema, got!, l)).toBe(true);
      });

      it("returns undefined for an unknown id", async () => {
        expect(await repo.getLocation(newId())).toBeUndefined();
      });

      it("rejects a duplicate id and keeps the original", async () => {
        const l = location({ name: "first" });
        await repo.createLocation(l, note("location.created"));
        const err = await repo.createLocation(location({ id: l.id, name: "second" }), note("location.created")).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(DuplicateIdError);
        expect((err as DuplicateIdError).id).toBe(l.id);
        expect((await repo.getLocation(l.id))?.name).toBe("first");
      });

      it("lists an empty store as one empty page", async () => {
        expect(await repo.listLocations({ limit: 5 })).toEqual({ items: [], more: false });
      });

      it("pages in id order with no gaps or duplicates", async () => {
        const base = Date.UTC(2030, 0, 1);
        const all = [0, 1, 2, 3, 4, 5].map((i) => location({ id: newId(base + i), name: `loc ${i}` }));
        for (const l of shuffled(all)) await repo.createLocation(l, note("location.created"));
        for (const limit of [1, 2, 3, 4, 6, 10]) {
          const pages = await collect<Location>(limit, (after) => repo.listLocations({ limit, after: after && { id: after.id } }));
          expect(pages.flat().map((l) => l.id), `limit ${limit}`).toEqual(all.map((l) => l.id));
        }
      });
    });

    describe("events", () => {
      it("round-trips every field, timestamps included", async () => {
        const e = event({
          name: "Jazz Night",
          hall: "Hall A",
          capacity: 300,
          seatsAvailable: 120,
          state: EventState.SCHEDULED,
          startTime: at(Date.UTC(2030, 5, 1, 20)),
          endTime: at(Date.UTC(2030, 5, 1, 23, 30)),
        });
        await repo.createEvent(e, note("event.created"));
        const got = await repo.getEvent(e.id);
        expect(got).toEqual(e);
        expect(equals(EventSchema, got!, e)).toBe(true);
      });

      it("keeps an unset end_time unset", async () => {
        const e = event({ endTime: undefined });
        await repo.createEvent(e, note("event.created"));
        expect((await repo.getEvent(e.id))?.endTime).toBeUndefined();
      });

      it("stores times at millisecond precision, truncating sub-millisecond nanos", async () => {
        const e = event({
          startTime: create(TimestampSchema, { seconds: 1_900_000_000n, nanos: 123_999_999 }),
          endTime: create(TimestampSchema, { seconds: 1_900_000_100n, nanos: 999_999 }),
        });
        await repo.createEvent(e, note("event.created"));
        const got = await repo.getEvent(e.id);
        expect(got?.startTime).toEqual(create(TimestampSchema, { seconds: 1_900_000_000n, nanos: 123_000_000 }));
        expect(got?.endTime).toEqual(create(TimestampSchema, { seconds: 1_900_000_100n, nanos: 0 }));
      });

      it("requires a start_time", async () => {
        await expect(repo.createEvent(event({ startTime: undefined }), note("event.created"))).rejects.toThrow(/start_time/);
      });

      it("returns undefined for an unknown id", async () => {
        expect(await repo.getEvent(newId())).toBeUndefined();
      });

      it("rejects a duplicate id and keeps the original", async () => {
        const e = event({ name: "first" });
        await repo.createEvent(e, note("event.created"));
        const err = await repo.createEvent(event({ id: e.id, name: "second" }), note("event.created")).catch((x: unknown) => x);
        expect(err).toBeInstanceOf(DuplicateIdError);
        expect((err as DuplicateIdError).id).toBe(e.id);
        expect((await repo.getEvent(e.id))?.name).toBe("first");
      });

      it("lists an empty store as one empty page", async () => {
        expect(await repo.listEvents({}, { limit: 5 })).toEqual({ items: [], more: false });
      });

      it("orders by (start_time, id), ties in start_time included, and pages without gaps", async () => {
        const t = Date.UTC(2030, 0, 1);
        // Ids run against start order so that id order alone would be wrong.
        const starts = [t + 3000, t + 1000, t + 2000, t + 2000, t + 2000, t + 1000, t];
        const all = starts.map((ms, i) => event({ id: newId(t - i), startTime: at(ms) }));
        for (const e of shuffled(all)) await repo.createEvent(e, note("event.created"));
        const expected = [...all].sort(byStartThenId).map((e) => e.id);

        const first = await repo.listEvents({}, { limit: 100 });
        expect(first.items.map((e) => e.id)).toEqual(expected);
        expect(first.more).toBe(false);
        // Every limit puts a page boundary inside a run of equal start times somewhere.
        for (const limit of [1, 2, 3, 4]) {
          const pages = await collect<Event>(limit, (after) => repo.listEvents({}, { limit, after: after && cursorOf(after) }));
          expect(pages.flat().map((e) => e.id), `limit ${limit}`).toEqual(expected);
        }
      });

      describe("filters", () => {
        const t = Date.UTC(2030, 0, 1);
        const hour = 3_600_000;
        const locA = newId(t);
        const locB = newId(t + 1);
        let fixtures: Event[];

        beforeEach(async () => {
          const spec: [string, string, number][] = [
            ["Jazz Night", locA, t],
            ["JAZZ brunch", locB, t + hour],
            ["Rock am Ring", locA, t + 2 * hour],
            ["a.b party", locA, t + 3 * hour],
            ["axb party", locB, t + 3 * hour],
            ["Show (live)", locA, t + 4 * hour],
            ["late jazz", locA, t + 5 * hour],
            ["Ärzte [acoustic] 50% * \\o/", locB, t + 6 * hour],
          ];
          fixtures = spec.map(([name, locationId, ms], i) => event({ id: newId(t + i), name, locationId, startTime: at(ms) }));
          for (const e of shuffled(fixtures)) await repo.createEvent(e, note("event.created"));
        });

        const names = async (filter: EventFilter) => (await repo.listEvents(filter, { limit: 100 })).items.map((e) => e.name);

        it("matches the query as a case-insensitive substring", async () => {
          expect(await names({ query: "jazz" })).toEqual(["Jazz Night", "JAZZ brunch", "late jazz"]);
          expect(await names({ query: "NIGHT" })).toEqual(["Jazz Night"]);
          expect(await names({ query: "ärzte" })).toEqual(["Ärzte [acoustic] 50% * \\o/"]);
          expect(await names({ query: "nothing like it" })).toEqual([]);
        });

        it("matches the query literally, never as a pattern", async () => {
          expect(await names({ query: "a.b" })).toEqual(["a.b party"]);
          expect(await names({ query: "(" })).toEqual(["Show (live)"]);
          expect(await names({ query: "(live)" })).toEqual(["Show (live)"]);
          expect(await names({ query: "[acoustic]" })).toEqual(["Ärzte [acoustic] 50% * \\o/"]);
          expect(await names({ query: "\\o/" })).toEqual(["Ärzte [acoustic] 50% * \\o/"]);
          for (const q of ["[", "*", "+", "?", "\\", "^", "$", "|", ".*", "{2}"]) {
            await expect(repo.listEvents({ query: q }, { limit: 100 }), q).resolves.toBeDefined();
          }
          expect(await names({ query: ".*" })).toEqual([]);
          expect(await names({ query: "^Jazz" })).toEqual([]);
        });

        it("an empty query matches everything", async () => {
          expect(await names({ query: "" })).toHaveLength(fixtures.length);
        });

        it("filters by location", async () => {
          expect(await names({ locationId: locB })).toEqual(["JAZZ brunch", "axb party", "Ärzte [acoustic] 50% * \\o/"]);
          expect(await names({ locationId: newId() })).toEqual([]);
        });

        it("bounds the start time: >= startAfter, < startBefore", async () => {
          expect(await names({ startAfter: new Date(t + 3 * hour) })).toEqual([
            "a.b party",
            "axb party",
            "Show (live)",
            "late jazz",
            "Ärzte [acoustic] 50% * \\o/",
          ]);
          expect(await names({ startBefore: new Date(t + 2 * hour) })).toEqual(["Jazz Night", "JAZZ brunch"]);
          expect(await names({ startAfter: new Date(t + hour), startBefore: new Date(t + 3 * hour) })).toEqual([
            "JAZZ brunch",
            "Rock am Ring",
          ]);
          expect(await names({ startAfter: new Date(t + hour), startBefore: new Date(t + hour) })).toEqual([]);
          // One millisecond either side of an event moves it in or out.
          expect(await names({ startAfter: new Date(t + hour + 1), startBefore: new Date(t + 3 * hour + 1) })).toEqual([
            "Rock am Ring",
            "a.b party",
            "axb party",
          ]);
        });

        it("combines all filters", async () => {
          const filter = { query: "JAZZ", locationId: locA, startAfter: new Date(t), startBefore: new Date(t + 6 * hour) };
          expect(await names(filter)).toEqual(["Jazz Night", "late jazz"]);
          expect(await names({ ...filter, startAfter: new Date(t + 1) })).toEqual(["late jazz"]);
        });

        it("pages through filtered results", async () => {
          const filter = { locationId: locA, startAfter: new Date(t + hour) };
          const expected = fixtures.filter((e) => e.locationId === locA && ms(e) >= t + hour).sort(byStartThenId);
          for (const limit of [1, 2, 3]) {
            const pages = await collect<Event>(limit, (after) => repo.listEvents(filter, { limit, after: after && cursorOf(after) }));
            expect(pages.flat().map((e) => e.name), `limit ${limit}`).toEqual(expected.map((e) => e.name));
          }
        });
      });

      describe("outbox and seats", () => {
        it("stores each create and the first cancel with its domain event, byte-exact", async () => {
          const l = location({});
          const e = event({ locationId: l.id });
          const created = [note("location.created"), note("event.created"), note("event.cancelled")];
          await repo.createLocation(l, created[0]!);
          await repo.createEvent(e, created[1]!);
          await repo.cancelEvent(e.id, created[2]!);
          await repo.cancelEvent(e.id, note("event.cancelled")); // a repeat announces nothing
          const pending = (await Promise.all(repo.outboxSources().map((s) => s.pending(10)))).flat();
          expect(pending.map((p) => p.entry.id).sort()).toEqual(created.map((c) => c.id).sort());
          for (const p of pending) {
            const original = created.find((c) => c.id === p.entry.id)!;
            expect(Buffer.from(p.entry.body).equals(Buffer.from(original.body))).toBe(true);
            expect(p.entry.routingKey).toBe(original.routingKey);
          }
          expect(pending.find((p) => p.entry.id === created[2]!.id)?.docId).toBe(e.id);
        });

        it("applies seats only from a newer inventory version", async () => {
          const e = event({ capacity: 10, seatsAvailable: 10 });
          await repo.createEvent(e, note("event.created"));
          expect(await repo.applySeats(e.id, 7, 3)).toBe(true);
          expect(await repo.applySeats(e.id, 8, 2)).toBe(false); // older, arrived late
          expect(await repo.applySeats(e.id, 7, 3)).toBe(false); // duplicate
          expect((await repo.getEvent(e.id))?.seatsAvailable).toBe(7);
          expect(await repo.applySeats(e.id, 9, 4)).toBe(true);
          expect((await repo.getEvent(e.id))?.seatsAvailable).toBe(9);
          expect(await repo.applySeats(newId(), 1, 1)).toBe(false);
        });

        it("loses no update when seat changes and the relay race on one event", async () => {
          const e = event({ capacity: 100, seatsAvailable: 100 });
          await repo.createEvent(e, note("event.created"));
          const [source] = repo.outboxSources().filter((s) => s.name === "events");
          const [created] = await source!.pending(1);
          await Promise.all([
            ...Array.from({ length: 30 }, (_, i) => repo.applySeats(e.id, 100 - (i + 1), i + 1)),
            source!.markSent(created!.docId, created!.entry.id),
            repo.cancelEvent(e.id, note("event.cancelled")),
          ]);
          const stored = await repo.getEvent(e.id);
          expect(stored?.seatsAvailable).toBe(70);
          expect(stored?.state).toBe(EventState.CANCELLED);
          const left = await source!.pending(10);
          expect(left.map((p) => p.entry.routingKey)).toEqual(["event.cancelled"]);
        });
      });

      describe("cancelEvent", () => {
        it("marks the event cancelled and returns it as stored", async () => {
          const e = event({ state: EventState.SCHEDULED });
          await repo.createEvent(e, note("event.created"));
          const cancelled = await repo.cancelEvent(e.id, note("event.cancelled"));
          expect(cancelled).toEqual({ ...e, state: EventState.CANCELLED });
          expect(await repo.getEvent(e.id)).toEqual(cancelled);
        });

        it("is idempotent", async () => {
          const e = event();
          await repo.createEvent(e, note("event.created"));
          const once = await repo.cancelEvent(e.id, note("event.cancelled"));
          const twice = await repo.cancelEvent(e.id, note("event.cancelled"));
          expect(twice).toEqual(once);
          expect(twice?.state).toBe(EventState.CANCELLED);
        });

        it("returns undefined for an unknown id", async () => {
          expect(await repo.cancelEvent(newId(), note("event.cancelled"))).toBeUndefined();
        });
      });
    });

    it("never aliases stored state", async () => {
      const l = location();
      const e = event();
      await repo.createLocation(l, note("location.created"));
      await repo.createEvent(e, note("event.created"));
      // Expected state, copied here: a snapshot read from the repository could itself be the stored object.
      const [lWant, eWant] = [clone(LocationSchema, l), clone(EventSchema, e)];

      // Mutating what was passed in...
      l.name = "changed";
      l.halls[0]!.capacity = 1;
      l.halls.push(create(HallSchema, { name: "extra", capacity: 2 }));
      e.name = "changed";
      e.startTime!.seconds += 1000n;
      // ...and everything handed out.
      const handedOut = [
        await repo.getLocation(l.id),
        (await repo.listLocations({ limit: 10 })).items[0],
        await repo.getEvent(e.id),
        (await repo.listEvents({}, { limit: 10 })).items[0],
      ];
      // A handed-out message is either the caller's own copy or a frozen
      // snapshot (the embedded store), where a write throws.
      const tryWrite = (write: () => void) => {
        try {
          write();
        } catch (err) {
          expect(err).toBeInstanceOf(TypeError);
        }
      };
      for (const m of handedOut) {
        tryWrite(() => (m!.name = "changed"));
        if ("halls" in m!) tryWrite(() => (m.halls[0]!.capacity = 1));
        if ("startTime" in m!) tryWrite(() => (m.startTime!.seconds += 1000n));
      }
      expect(await repo.getLocation(l.id)).toEqual(lWant);
      expect(await repo.getEvent(e.id)).toEqual(eWant);

      const cancelled = await repo.cancelEvent(e.id, note("event.cancelled"));
      tryWrite(() => (cancelled!.state = EventState.SCHEDULED));
      expect((await repo.getEvent(e.id))?.state).toBe(EventState.CANCELLED);
      // A change stores a new snapshot: what was handed out before stays as it was.
      expect((handedOut[2] as Event).state).toBe(EventState.SCHEDULED);
    });

    it("ping resolves", async () => {
      await expect(repo.ping()).resolves.toBeUndefined();
    });
  });
}

function location(init: MessageInitShape<typeof LocationSchema> = {}): Location {
  return create(LocationSchema, {
    id: newId(),
    name: "Arena",
    address: "Main St 1",
    country: "DE",
    halls: [
      { name: "Hall A", capacity: 300 },
      { name: "Hall B", capacity: 50 },
    ],
    ...init,
  });
}

function event(init: MessageInitShape<typeof EventSchema> = {}): Event {
  return create(EventSchema, {
    id: newId(),
    name: "Concert",
    locationId: newId(),
    hall: "Hall A",
    startTime: at(Date.UTC(2030, 0, 1, 20)),
    endTime: at(Date.UTC(2030, 0, 1, 22)),
    capacity: 300,
    seatsAvailable: 300,
    state: EventState.SCHEDULED,
    ...init,
  });
}

const at = (ms: number) => timestampFromMs(ms);
const ms = (e: Event) => timestampDate(e.startTime!).getTime();
const cursorOf = (e: Event): EventCursor => ({ startMillis: ms(e), id: e.id });
const byStartThenId = (a: Event, b: Event) => ms(a) - ms(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Follows `more` to the end, checking each page is full unless it is the last. */
async function collect<T>(limit: number, fetch: (after: T | undefined) => Promise<PageResult<T>>): Promise<T[][]> {
  const pages: T[][] = [];
  let after: T | undefined;
  for (;;) {
    const page = await fetch(after);
    expect(page.items.length).toBeLessThanOrEqual(limit);
    pages.push(page.items);
    if (!page.more) return pages;
    expect(page.items).toHaveLength(limit);
    after = page.items.at(-1);
    if (pages.length > 100) throw new Error("paging does not terminate");
  }
}

/** Deterministic reorder, so insertion order never explains the result order. */
function shuffled<T>(items: T[]): T[] {
  return [...items.filter((_, i) => i % 2 === 1), ...items.filter((_, i) => i % 2 === 0)].reverse();
}

/** A stand-in domain event for the outbox; its bytes are checked verbatim. */
export function note(routingKey: string): OutboxEntry {
  const id = newId();
  return { id, routingKey, type: "test.Note", body: new TextEncoder().encode(`${routingKey}:${id}`), occurredAt: new Date(Math.floor(Date.now() / 1000) * 1000) };
}
