import type { ServiceImpl } from "@connectrpc/connect";
import type { BookingService } from "../../gen/myevents/v1/booking_service_pb.js";
import { Violations } from "../runtime/errors.js";
import { callerKey } from "../runtime/identity.js";
import { decodePageToken, encodePageToken, pageSize } from "../runtime/paging.js";
import { toBookingMessage, type Bookings } from "./bookings.js";

export const MAX_SEATS_PER_BOOKING = 10;
const MAX_ID_LENGTH = 64;
const MAX_REQUEST_ID_LENGTH = 128;

/** BookingService handlers: check input, read the caller, delegate to the workflows. */
export function bookingService(bookings: Bookings): ServiceImpl<typeof BookingService> {
  return {
    async createBooking(req, ctx) {
      const v = new Violations();
      requiredId(req.eventId, "event_id", MAX_ID_LENGTH, v);
      if (req.seats < 1 || req.seats > MAX_SEATS_PER_BOOKING) v.add("seats", `must be between 1 and ${MAX_SEATS_PER_BOOKING}`);
      requiredId(req.requestId, "request_id", MAX_REQUEST_ID_LENGTH, v);
      v.throwIfAny();
      const record = await bookings.create(ctx.values.get(callerKey), req.eventId, req.seats, req.requestId);
      return { booking: toBookingMessage(record) };
    },

    async getBooking(req, ctx) {
      const v = new Violations();
      requiredId(req.id, "id", MAX_ID_LENGTH, v);
      v.throwIfAny();
      return { booking: toBookingMessage(await bookings.get(ctx.values.get(callerKey), req.id)) };
    },

    async listBookings(req, ctx) {
      const v = new Violations();
      const limit = pageSize(req.pageSize, v);
      const user = ctx.values.get(callerKey);
      const before = decodePageToken(req.pageToken, { user }, isCursor, v);
      v.throwIfAny();
      const page = await bookings.list(user, { limit, before: before?.id });
      const last = page.items.at(-1);
      return {
        bookings: page.items.map(toBookingMessage),
        nextPageToken: page.more && last ? encodePageToken({ id: last.id }, { user }) : "",
      };
    },

    async cancelBooking(req, ctx) {
      const v = new Violations();
      requiredId(req.id, "id", MAX_ID_LENGTH, v);
      v.throwIfAny();
      return { booking: toBookingMessage(await bookings.cancel(ctx.values.get(callerKey), req.id)) };
    },
  };
}

function requiredId(value: string, field: string, max: number, v: Violations): void {
  if (value.trim() === "") v.add(field, "is required");
  else if (value.length > max) v.add(field, `must be at most ${max} characters`);
}

function isCursor(value: unknown): value is { id: string } {
  return typeof value === "object" && value !== null && typeof (value as { id: unknown }).id === "string";
}
