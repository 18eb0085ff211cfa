import { AsyncLocalStorage } from "node:async_hooks";
import type { Interceptor } from "@connectrpc/connect";

/**
 * The `authorization` header of the call being served, for the calls its
 * handler makes to other services: the user id travels with the call
 * (bookings asking events about an event does so as the booking user).
 * Work a service does on its own behalf (recovery, consumers) runs outside
 * any call and sends no credential; it makes read-only calls only.
 */
const callerCredentials = new AsyncLocalStorage<string>();

export function runWithCallerCredentials<T>(authorization: string, fn: () => T): T {
  return callerCredentials.run(authorization, fn);
}

/** Client interceptor: sends the served call's `authorization` along, unless the request sets its own. */
export function forwardCallerCredentials(): Interceptor {
  return (next) => (req) => {
    const authorization = callerCredentials.getStore();
    if (authorization !== undefined && !req.header.has("authorization")) req.header.set("authorization", authorization);
    return next(req);
  };
}
