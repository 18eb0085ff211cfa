// What must hold after every fault, checked against the databases
// themselves (read directly from FerretDB, not through the services).
import type { Db, MongoClient } from "mongodb";
import { eventually } from "../support/eventually.js";
import type { TestEvent } from "./client.js";
import type { BookingLoad } from "./load.js";
import type { Mesh } from "./mesh.js";

interface BookingDoc {
  _id: string;
  eventId: string;
  userId: string;
  requestId: string;
  seats: number;
  state: string;
  reservedBy?: string;
  outbox?: unknown[];
}
interface InventoryDoc {
  _id: string;
  capacity: number;
  seatsAvailable: number;
  version: number;
  markers?: string[];
}
interface EventDoc {
  _id: string;
  capacity: number;
  seatsAvailable?: number;
  seatsVersion?: number;
}

export interface Verdict {
  /** Seats sold beyond capacity, summed over events. */
  oversoldSeats: number;
  /** Events where capacity - available != seats of confirmed bookings (or available < 0). */
  seatMismatches: string[];
  /** Events whose EventService copy of seats_available differs from the inventory after the messages flowed. */
  downstreamMismatches: string[];
  /**
   * Messages the EventService recorded vs. those the bookings imply
   * (BookingConfirmed + BookingCancelled) plus the ReservationUndone
   * messages recovery published (counted by the suite's tap).
   */
  processed: { expected: number; actual: number };
  /** Requests with more than one booking (in the database or in the answers a client got). */
  duplicated: number;
  /** Bookings a client was told are confirmed (or cancelled) that the database does not hold so. */
  lost: string[];
  /** Confirmed bookings in the database that no client was told about. */
  unannounced: string[];
  /** Events whose EventService copy is still behind the inventory after every message was applied. */
  staleCopies: string[];
}

/**
 * Each confirmation and each cancellation produced one message with its
 * own id; the EventService records every message it applied, once
 * (processed_messages). Equal counts: every effect arrived, none twice.
 */
async function processedCounts(bookingsDb: Db, eventsDb: Db, ids: string[], undone: () => Promise<number>): Promise<{ expected: number; actual: number }> {
  const bookings = bookingsDb.collection<BookingDoc>("bookings");
  const confirmedEver = await bookings.countDocuments({ eventId: { $in: ids }, state: { $in: ["CONFIRMED", "CANCELLED"] } });
  const cancelled = await bookings.countDocuments({ eventId: { $in: ids }, state: "CANCELLED" });
  const actual = await eventsDb.collection("processed_messages").countDocuments({ _id: { $regex: "^events:" } } as object);
  // Read after `actual`: a message the EventService applied was routed to the tap's queue by the same publish.
  return { expected: confirmedEver + cancelled + (await undone()), actual };
}

export function verdictProblems(v: Verdict): string[] {
  const problems: string[] = [];
  if (v.oversoldSeats > 0) problems.push(`oversold by ${v.oversoldSeats} seat(s)`);
  problems.push(...v.seatMismatches, ...v.downstreamMismatches, ...v.staleCopies.map((c) => `stale seat copy: ${c}`));
  if (v.processed.actual !== v.processed.expected) problems.push(`EventService processed ${v.processed.actual} booking messages, expected ${v.processed.expected}`);
  if (v.duplicated > 0) problems.push(`${v.duplicated} duplicated booking(s)`);
  problems.push(...v.lost.map((l) => `lost: ${l}`), ...v.unannounced.map((u) => `unannounced: ${u}`));
  return problems;
}

/**
 * Waits until every operation has ended (no PENDING/CANCELLING booking, no
 * reserve marker, every outbox entry published and applied by the
 * EventService), then compares the databases with each other and with
 * what the clients were told.
 */
export async function checkInvariants(
  mesh: Mesh,
  client: MongoClient,
  events: TestEvent[],
  load: BookingLoad,
  settleMs: number,
  /** Distinct ReservationUndone messages published so far. */
  undone: () => Promise<number>,
): Promise<Verdict> {
  const bookingsDb = client.db(mesh.databases.bookings);
  const eventsDb = client.db(mesh.databases.events);
  const ids = events.map((e) => e.id);

  await eventually(
    async () => {
      const busy = await bookingsDb.collection<BookingDoc>("bookings").countDocuments({ state: { $in: ["PENDING", "CANCELLING"] } });
      if (busy > 0) throw new Error(`${busy} booking operation(s) still in progress`);
      const unpublished = await bookingsDb.collection<BookingDoc>("bookings").countDocuments({ "outbox.0": { $exists: true } });
      if (unpublished > 0) throw new Error(`${unpublished} booking(s) with unpublished outbox entries`);
      const inventories = await bookingsDb.collection<InventoryDoc>("inventory").find({ _id: { $in: ids } }).toArray();
      const reserving = inventories.flatMap((i) => (i.markers ?? []).filter((m) => m.startsWith("reserve:")));
      if (reserving.length > 0) throw new Error(`reserve markers left: ${reserving.join(", ")}`);
      const processed = await processedCounts(bookingsDb, eventsDb, ids, undone);
      if (processed.actual < processed.expected) throw new Error(`EventService processed ${processed.actual} of ${processed.expected} booking messages`);
      // Every inventory change is announced (booking messages, ReservationUndone): the copies catch up.
      const copies = await eventsDb.collection<EventDoc>("events").find({ _id: { $in: ids } }).toArray();
      const behind = inventories.filter((i) => (copies.find((c) => c._id === i._id)?.seatsVersion ?? 0) < i.version);
      if (behind.length > 0) throw new Error(`EventService seat copies behind the inventory for ${behind.length} event(s)`);
    },
    settleMs,
    200,
  ).catch((err: Error) => {
    throw new Error(`the mesh did not settle within ${settleMs} ms: ${err.message}`);
  });

  const bookings = await bookingsDb.collection<BookingDoc>("bookings").find({ eventId: { $in: ids } }).toArray();
  const inventories = await bookingsDb.collection<InventoryDoc>("inventory").find({ _id: { $in: ids } }).toArray();
  const copies = await eventsDb.collection<EventDoc>("events").find({ _id: { $in: ids } }).toArray();

  const verdict: Verdict = {
    oversoldSeats: 0,
    seatMismatches: [],
    downstreamMismatches: [],
    processed: { expected: 0, actual: 0 },
    duplicated: 0,
    lost: [],
    unannounced: [],
    staleCopies: [],
  };

  for (const event of events) {
    const inv = inventories.find((i) => i._id === event.id);
    const sold = bookings.filter((b) => b.eventId === event.id && b.state === "CONFIRMED").reduce((n, b) => n + b.seats, 0);
    verdict.oversoldSeats += Math.max(0, sold - event.capacity);
    if (!inv) {
      if (sold > 0) verdict.seatMismatches.push(`event ${event.id}: ${sold} seats sold but no inventory`);
      continue;
    }
    if (inv.capacity !== event.capacity || inv.seatsAvailable < 0 || inv.seatsAvailable + sold !== inv.capacity) {
      verdict.seatMismatches.push(`event ${event.id}: capacity ${inv.capacity} (created with ${event.capacity}), available ${inv.seatsAvailable}, sold ${sold}`);
    }
    // The copy applies announced changes by inventory version: never ahead, equal at the same version,
    // and once every message is applied not behind either (recovery announces the seats it gives back).
    const copy = copies.find((c) => c._id === event.id);
    const copyVersion = copy?.seatsVersion ?? 0;
    if (copyVersion > inv.version || (copyVersion === inv.version && copy?.seatsAvailable !== inv.seatsAvailable)) {
      verdict.downstreamMismatches.push(`event ${event.id}: EventService says ${copy?.seatsAvailable} seats at version ${copyVersion}, inventory ${inv.seatsAvailable} at ${inv.version}`);
    } else if (copyVersion < inv.version) {
      verdict.staleCopies.push(`event ${event.id}: EventService says ${copy?.seatsAvailable} seats (version ${copyVersion}), inventory ${inv.seatsAvailable} (version ${inv.version})`);
    }
  }

  verdict.processed = await processedCounts(bookingsDb, eventsDb, ids, undone);

  const byRequest = new Map<string, BookingDoc[]>();
  for (const b of bookings) {
    const key = `${b.userId}\u0000${b.requestId}`;
    byRequest.set(key, [...(byRequest.get(key) ?? []), b]);
  }
  for (const docs of byRequest.values()) if (docs.length > 1) verdict.duplicated += docs.length - 1;

  const byId = new Map(bookings.map((b) => [b._id, b]));
  const told = new Set<string>();
  for (const req of load.requests) {
    if (req.answers.size > 1) verdict.duplicated += req.answers.size - 1;
    if (req.outcome !== "confirmed") continue;
    told.add(req.bookingId!);
    const doc = byId.get(req.bookingId!);
    const want = req.cancel === "done" ? "CANCELLED" : req.cancel === undefined ? "CONFIRMED" : undefined;
    if (!doc) verdict.lost.push(`booking ${req.bookingId} (request ${req.requestId}) is missing`);
    else if (want && doc.state !== want) verdict.lost.push(`booking ${req.bookingId} is ${doc.state}, the client was told ${want}`);
  }
  for (const b of bookings) {
    if (b.state === "CONFIRMED" && !told.has(b._id)) verdict.unannounced.push(`booking ${b._id} (request ${b.requestId}) is CONFIRMED`);
  }
  return verdict;
}
