import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { BookingService } from "../../gen/myevents/v1/booking_service_pb.js";
import { EventService } from "../../gen/myevents/v1/event_service_pb.js";
import { NotificationService } from "../../gen/myevents/v1/notification_service_pb.js";
import { currentSession, type Session } from "./session.js";

/**
 * The one place that puts the caller's credentials on a request: the
 * signed-in user's token as `authorization: Bearer`. Anonymous callers
 * send nothing and may only read.
 */
export function credentialsInterceptor(session: () => Session | undefined): Interceptor {
  return (next) => (req) => {
    const signedIn = session();
    if (signedIn) {
      req.header.set("authorization", `Bearer ${signedIn.token}`);
    }
    return next(req);
  };
}

// Same origin as the page: the gateway serves both (or Vite's proxy in development).
const transport = createConnectTransport({
  baseUrl: typeof location === "undefined" ? "http://localhost:8080" : location.origin,
  interceptors: [credentialsInterceptor(currentSession)],
});

export const events = createClient(EventService, transport);
export const bookings = createClient(BookingService, transport);
export const notifications = createClient(NotificationService, transport);
