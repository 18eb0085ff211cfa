import { create, fromBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { BookingState } from "../../gen/myevents/v1/booking_pb.js";
import {
  BookingCancelledSchema,
  BookingConfirmedSchema,
  EventCancelledSchema,
  EventCreatedSchema,
} from "../../gen/myevents/v1/domain_events_pb.js";
import { EventState } from "../../gen/myevents/v1/event_pb.js";
import { SubscribeResponseSchema, type SubscribeResponse } from "../../gen/myevents/v1/notification_service_pb.js";
import type { IncomingMessage } from "../messaging/port.js";

/** What the NotificationService listens to on the exchange (its broadcast queue's bindings). */
export const NOTIFICATION_ROUTING_KEYS = ["event.*", "booking.*"];

/** A notification and the event it is about (what subscribers filter by). */
export interface Notification {
  eventId: string;
  response: SubscribeResponse;
}

/**
 * The notification a domain event makes, or undefined for one that
 * changes nothing a page shows (an unknown key under event.* or booking.*,
 * say from a newer publisher). Throws on a body that does not decode.
 *
 * seats_available: BookingConfirmed and BookingCancelled carry the seats
 * left after the change (from the BookingService's inventory) and
 * EventCreated the event with its capacity; EventCancelled carries no count,
 * and a cancelled event sells nothing, so its notification says 0.
 */
export function toNotification(message: IncomingMessage): Notification | undefined {
  const base = { messageId: message.messageId };
  switch (message.routingKey) {
    case "event.created": {
      const { event, occurredAt } = fromBinary(EventCreatedSchema, message.body);
      if (!event) throw new Error(`EventCreated ${message.messageId} carries no event`);
      const change = { eventId: event.id, seatsAvailable: event.seatsAvailable, state: event.state || EventState.SCHEDULED };
      return notification(change.eventId, { ...base, occurredAt, change: { case: "eventChange", value: change } });
    }
    case "event.cancelled": {
      const { eventId, occurredAt } = fromBinary(EventCancelledSchema, message.body);
      const change = { eventId, seatsAvailable: 0, state: EventState.CANCELLED };
      return notification(eventId, { ...base, occurredAt, change: { case: "eventChange", value: change } });
    }
    case "booking.confirmed":
    case "booking.cancelled": {
      const confirmed = message.routingKey === "booking.confirmed";
      const { booking, seatsAvailable, occurredAt } = fromBinary(confirmed ? BookingConfirmedSchema : BookingCancelledSchema, message.body);
      if (!booking) throw new Error(`${message.type} ${message.messageId} carries no booking`);
      const change = {
        eventId: booking.eventId,
        bookingId: booking.id,
        state: confirmed ? BookingState.CONFIRMED : BookingState.CANCELLED,
        seats: booking.seats,
        seatsAvailable,
      };
      return notification(booking.eventId, { ...base, occurredAt, change: { case: "bookingChange", value: change } });
    }
    default:
      return undefined;
  }
}

function notification(eventId: string, init: Parameters<typeof create<typeof SubscribeResponseSchema>>[1]): Notification {
  return { eventId, response: create(SubscribeResponseSchema, init) };
}

/** "Nothing changed, the stream is alive": keeps proxies from timing the stream out. */
export function heartbeat(): SubscribeResponse {
  return create(SubscribeResponseSchema, { occurredAt: timestampNow(), change: { case: "heartbeat", value: {} } });
}
