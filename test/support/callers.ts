import type { Interceptor } from "@connectrpc/connect";

/**
 * Who a test (or benchmark) calls as. The one place that builds the
 * headers of mutating calls (CreateLocation, CreateEvent, CreateBooking,
 * CancelBooking, CancelEvent): when tokens replace `x-user-id`, the bearer
 * token is added here and nowhere else.
 */
export function callerHeaders(user: string, _options: { admin?: boolean } = {}): Record<string, string> {
  return { "x-user-id": user };
}

/** callerHeaders on every call of a transport: `createGrpcTransport({ baseUrl, interceptors: [asCaller("alice")] })`. */
export function asCaller(user: string, options: { admin?: boolean } = {}): Interceptor {
  const headers = callerHeaders(user, options);
  return (next) => (req) => {
    for (const [name, value] of Object.entries(headers)) req.header.set(name, value);
    return next(req);
  };
}
