/**
 * Property descriptors for getters that every per-call object of a kind
 * shares, reading what they need from the object itself (under symbols).
 *
 * connect's API wants some members of a call's request and response lazy
 * (the signal, the response headers, a message decoded only if read). As
 * getters written in an object literal they are new closures per call, and
 * objects built that way made everything a call touched (its HTTP/2 stream
 * included) survive into V8's old space: the gRPC fast path alone promoted
 * 16% of all it allocated, 0.5% with shared getters (bench/README.md finding 10).
 * Define them with `Object.defineProperties(object, descriptors)`; they are
 * own and enumerable, so a copy made with `{...req}` gets their values, as it
 * did from the literal's getters.
 */
export function sharedGetters<T>(getters: Record<string, (this: T) => unknown>): PropertyDescriptorMap {
  return Object.fromEntries(Object.entries(getters).map(([name, get]) => [name, { get, enumerable: true, configurable: true }]));
}
