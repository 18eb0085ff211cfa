// The EventService's consumer of booking.*: its seat copy follows the
// BookingService's inventory by version, including seats that recovery
// gave back (ReservationUndone), whatever the order and however often.
import { create, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { BookingSchema } from "../../gen/myevents/v1/booking_pb.js";
import { BookingConfirmedSchema, ReservationUndoneSchema } from "../../gen/myevents/v1/domain_events_pb.js";
import { EventSchema, EventState } from "../../gen/myevents/v1/event_pb.js";
import type { IncomingMessage } from "../messaging/port.js";
import { newId } from "../runtime/ids.js";
import { EVENTS_ROUTING_KEYS, eventsBookingHandler } from "./consumers.js";
import { MemoryEventRepository } from "./repository/memory.js";

function message<Desc extends DescMessage>(routingKey: string, schema: Desc, body: MessageShape<Desc>): IncomingMessage {
  return { routingKey, messageId: newId(), type: schema.typeName, body: toBinary(schema, body), timestamp: new Date(), deliveryCount: 1 };
}

async function setup(capacity: number) {
  const repo = new MemoryEventRepository();
  const id = newId();
  const event = create(EventSchema, { id, name: "Show", locationId: newId(), hall: "Main", capacity, seatsAvailable: capacity, state: EventState.SCHEDULED,
    startTime: timestampFromDate(new Date(Date.now() + 86_400_000)), endTime: timestampFromDate(new Date(Date.now() + 90_000_000)) });
  await repo.createEvent(event, { id: newId(), routingKey: "event.created", type: "t", body: new Uint8Array(), occurredAt: new Date() });
  return { repo, id, handle: eventsBookingHandler(repo), seats: async () => (await repo.getEvent(id))!.seatsAvailable };
}

const undone = (eventId: string, seatsAvailable: number, version: number) =>
  message("booking.reservation_undone", ReservationUndoneSchema, create(ReservationUndoneSchema, { id: newId(), eventId, bookingId: newId(), seats: 2, seatsAvailable, inventoryVersion: BigInt(version) }));
const confirmed = (eventId: string, seatsAvailable: number, version: number) =>
  message("booking.confirmed", BookingConfirmedSchema, create(BookingConfirmedSchema, { id: newId(), booking: create(BookingSchema, { id: newId(), eventId, seats: 2 }), seatsAvailable, inventoryVersion: BigInt(version) }));

describe("eventsBookingHandler", () => {
  it("listens to booking.reservation_undone", () => {
    expect(EVENTS_ROUTING_KEYS).toContain("booking.reservation_undone");
  });

  it("applies ReservationUndone's count by version: newer wins, older and repeated ones change nothing", async () => {
    const s = await setup(10);
    // reserve (v1, no message), confirm elsewhere (v2: 6 left), the abandoned reservation undone (v3: 8 left)
    await s.handle(confirmed(s.id, 6, 2));
    expect(await s.seats()).toBe(6);
    const undo = undone(s.id, 8, 3);
    await s.handle(undo);
    expect(await s.seats()).toBe(8);
    await s.handle(undo); // redelivered
    await s.handle(confirmed(s.id, 6, 2)); // late, older
    expect(await s.seats()).toBe(8);
  });

  it("arriving before the booking message it follows, it still wins by version", async () => {
    const s = await setup(10);
    await s.handle(undone(s.id, 8, 3));
    await s.handle(confirmed(s.id, 6, 2));
    expect(await s.seats()).toBe(8);
  });

  it("a ReservationUndone without event id fails (dead-lettered after its deliveries), nothing changes", async () => {
    const s = await setup(10);
    await expect(s.handle(undone("", 8, 3))).rejects.toThrow(/carries no event id/);
    expect(await s.seats()).toBe(10);
  });
});
