import type { DescMethod } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { BookingService } from "../../../gen/myevents/v1/booking_service_pb.js";
import { EventService } from "../../../gen/myevents/v1/event_service_pb.js";
import { NotificationService } from "../../../gen/myevents/v1/notification_service_pb.js";

/**
 * Who may call a method:
 * - `open`: anyone, credentials ignored (health probes, reflection);
 * - `public`: anyone; a token, when sent, must be valid;
 * - `user`: a valid token;
 * - `admin`: a valid token whose `roles` claim contains "admin".
 */
export type Access = "open" | "public" | "user" | "admin";

/**
 * The whole access policy of the mesh. By default a method marked
 * `idempotency_level = NO_SIDE_EFFECTS` in the contracts is `public` and
 * every other method is `user`; the lists below are the exceptions.
 */
const key = (m: DescMethod) => `${m.parent.typeName}/${m.name}`;

/** Change what every visitor sees: administrators only. */
const ADMIN_ONLY = new Set([EventService.method.createLocation, EventService.method.createEvent, EventService.method.cancelEvent].map(key));

/** Read-only, but the answer is the caller's own bookings: without a token there is no "own". */
const CALLER_SCOPED = new Set([BookingService.method.getBooking, BookingService.method.listBookings].map(key));

/**
 * Read-only server streams: the contracts cannot mark them NO_SIDE_EFFECTS
 * (changing a method's idempotency level is a breaking change, and Connect
 * uses the mark for unary GET only), so they are listed.
 */
const READ_ONLY_STREAMS = new Set([NotificationService.method.subscribe].map(key));

/** Served by every process's runtime for probes and tools; never behind credentials. */
const OPEN_SERVICES = new Set(["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]);

export function accessOf(method: DescMethod): Access {
  if (OPEN_SERVICES.has(method.parent.typeName)) return "open";
  const k = key(method);
  if (ADMIN_ONLY.has(k)) return "admin";
  if (CALLER_SCOPED.has(k)) return "user";
  if (READ_ONLY_STREAMS.has(k) || method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS) return "public";
  return "user";
}
