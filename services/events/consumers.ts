import { fromBinary } from "@bufbuild/protobuf";
import { BookingCancelledSchema, BookingConfirmedSchema, ReservationUndoneSchema } from "../../gen/myevents/v1/domain_events_pb.js";
import type { IncomingMessage } from "../messaging/port.js";
import type { EventRepository } from "./repository/repository.js";

/** Routing keys the EventService consumes (its queue "myevents.events"). */
export const EVENTS_ROUTING_KEYS = ["booking.confirmed", "booking.cancelled", "booking.reservation_undone"];

/**
 * Keeps Event.seats_available in step with the BookingService, which owns
 * the seat inventory. Each message carries the seats left and the
 * inventory version after the change; applying only newer versions makes
 * duplicates and reordering harmless. The EventService is therefore
 * eventually consistent: seats_available lags bookings by the messaging
 * delay (milliseconds normally; longer while the broker is down).
 */
export function eventsBookingHandler(repo: EventRepository) {
  return async (message: IncomingMessage): Promise<void> => {
    if (message.routingKey === "booking.reservation_undone") {
      // Seats given back by recovery: no booking changed, only the count.
      const undone = fromBinary(ReservationUndoneSchema, message.body);
      if (!undone.eventId) throw new Error(`${ReservationUndoneSchema.typeName} ${message.messageId} carries no event id`);
      await repo.applySeats(undone.eventId, undone.seatsAvailable, Number(undone.inventoryVersion));
      return;
    }
    const schema = message.routingKey === "booking.confirmed" ? BookingConfirmedSchema : message.routingKey === "booking.cancelled" ? BookingCancelledSchema : undefined;
    if (!schema) throw new Error(`unexpected routing key ${message.routingKey}`);
    const change = fromBinary(schema, message.body);
    if (!change.booking) throw new Error(`${schema.typeName} ${message.messageId} carries no booking`);
    await repo.applySeats(change.booking.eventId, change.seatsAvailable, Number(change.inventoryVersion));
  };
}
