import type { ServiceImpl } from "@connectrpc/connect";
import type { BookingService } from "../../gen/myevents/v1/booking_service_pb.js";
import { Violations } from "../runtime/errors.js";
import { callerKey } from "../runtime/identity.js";
import { decodePageToken, encodePageToken, pageSize } from "../runtime/paging.js";
import { toBookingMessage, type Bookings } from "./bookings.js";

/**
 * BookingService handlers: read the caller, delegate to the workflows.
 * Requests arrive already checked against the contract's rules (ids,
 * 1..10 seats, request_id) by the validation interceptor.
 */
export function bookingService(bookings: Bookings): ServiceImpl<typeof BookingService> {
  return {
    async createBooking(req, ctx) {
      const timeoutMs = ctx.timeoutMs();
      const deadlineAt = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
      const record = await bookings.create(ctx.values.get(callerKey), req.eventId, req.seats, req.requestId, deadlineAt);
      return { booking: toBookingMessage(record) };
    },

    async getBooking(req, ctx) {
      return { booking: toBookingMessage(await bookings.get(ctx.values.get(callerKey), req.id)) };
    },

    async listBookings(req, ctx) {
      const v = new Violations();
      const limit = pageSize(req.pageSize);
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
      return { booking: toBookingMessage(await bookings.cancel(ctx.values.get(callerKey), req.id)) };
    },
  };
}

function isCursor(value: unknown): value is { id: string } {
  return typeof value === "object" && value !== null && typeof (value as { id: unknown }).id === "string";
}
