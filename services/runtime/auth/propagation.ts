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

/**
 * Set by the first forwardCallerCredentials(). Until then the store is not
 * entered: an AsyncLocalStorage once entered copies its value into every
 * promise the process makes (Node 20's promise hooks), a cost per promise
 * that a process making no outgoing calls (events, notifications) pays for
 * nothing. Clients are made when a service starts, before it serves.
 */
let forwarding = false;

export function runWithCallerCredentials<T>(authorization: string, fn: () => T): T {
  return forwarding ? callerCredentials.run(authorization, fn) : fn();
}

/** Whether served calls keep their credentials for outgoing ones (some client forwards them). */
export function forwardsCallerCredentials(): boolean {
  return forwarding;
}

/** Client interceptor: sends the served call's `authorization` along, unless the request sets its own. */
export function forwardCallerCredentials(): Interceptor {
  forwarding = true;
  return (next) => (req) => {
    const authorization = callerCredentials.getStore();
    if (authorization !== undefined && !req.header.has("authorization")) req.header.set("authorization", authorization);
    return next(req);
  };
}
