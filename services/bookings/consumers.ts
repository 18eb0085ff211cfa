import { fromBinary } from "@bufbuild/protobuf";
import { EventCancelledSchema, EventCreatedSchema } from "../../gen/myevents/v1/domain_events_pb.js";
import type { IncomingMessage } from "../messaging/port.js";
import type { Bookings } from "./bookings.js";

/** Routing keys the BookingService consumes (its queue "myevents.bookings"). */
export const BOOKINGS_ROUTING_KEYS = ["event.created", "event.cancelled"];

/**
 * Feeds the seat inventory from the EventService's domain events. Both
 * effects are idempotent, so a redelivered message changes nothing.
 */
export function bookingsEventHandler(bookings: Bookings) {
  return async (message: IncomingMessage): Promise<void> => {
    switch (message.routingKey) {
      case "event.created": {
        const { event } = fromBinary(EventCreatedSchema, message.body);
        if (!event) throw new Error(`EventCreated ${message.messageId} carries no event`);
        await bookings.eventCreated(event.id, event.capacity);
        return;
      }
      case "event.cancelled": {
        const { eventId } = fromBinary(EventCancelledSchema, message.body);
        // Capacity only matters for an event never heard of: closed, it sells nothing.
        await bookings.eventCancelled(eventId, 0);
        return;
      }
      default:
        throw new Error(`unexpected routing key ${message.routingKey}`);
    }
  };
}
