import { AsyncResource } from "node:async_hooks";

/**
 * Makes node's HTTP/2 client `request()` cheaper (bench/README.md, finding
 * 18: the gateway's CPU per call), for every outgoing call of a service or
 * the gateway (installed by process-tuning.ts at start).
 *
 * Every `ClientHttp2Session.request()` binds a private callback to a fresh
 * `AsyncResource` (`reqAsync.bind(requestOnConnect.bind(...))`, Node 20's
 * lib/internal/http2/core.js), and `AsyncResource.prototype.bind` decorates
 * each bound function with a deprecated `asyncResource` accessor (DEP0172)
 * made through two `deprecate()` wrappers, which set a prototype on fresh
 * functions: most of the cost, for a function node calls once and never
 * hands out. This binds that one callback (recognised by its name) the same
 * way without the accessor: the same async scope, the same `this` and
 * arguments. Every other `bind` is node's own.
 */
export function useCheapRequestBind(): void {
  const proto = AsyncResource.prototype as unknown as { bind: Bind; [patched]?: true };
  if (proto[patched]) return;
  const nodeBind = proto.bind;
  proto.bind = function bind(this: AsyncResource, fn, thisArg) {
    if (thisArg !== undefined || typeof fn !== "function" || fn.name !== REQUEST_ON_CONNECT) return nodeBind.call(this, fn, thisArg);
    const resource = this;
    return function (this: unknown, ...args: unknown[]) {
      return resource.runInAsyncScope(fn, this, ...args);
    };
  };
  proto[patched] = true;
}

type Bind = (this: AsyncResource, fn: (...args: unknown[]) => unknown, thisArg?: unknown) => (...args: unknown[]) => unknown;
const REQUEST_ON_CONNECT = "bound requestOnConnect";
const patched = Symbol("cheap request bind");
