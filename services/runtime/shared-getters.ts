/**
 * Getters that every per-call object of a kind shares, reading what they
 * need from the object itself (under symbols).
 *
 * connect's API wants some members of a call's request and response lazy
 * (the signal, the response headers, a message decoded only if read). As
 * getters written in an object literal they are new closures per call, and
 * objects built that way made everything a call touched (its HTTP/2 stream
 * included) survive into V8's old space: the gRPC fast path alone promoted
 * 16% of all it allocated, 0.5% with shared getters (bench/README.md finding 10).
 * The returned function adds them to an object (and returns it); they are
 * own and enumerable, so a copy made with `{...req}` gets their values, as it
 * did from the literal's getters. One `Object.defineProperty` per getter:
 * a third to a half less than `Object.defineProperties` with a descriptor
 * map, which reads every descriptor object again on every call.
 */
export function sharedGetters<T>(getters: Record<string, (this: T) => unknown>): <O extends object>(target: O) => O {
  const descriptors = Object.entries(getters).map(([name, get]) => [name, { get, enumerable: true, configurable: true }] as const);
  return (target) => {
    for (let i = 0; i < descriptors.length; i++) Object.defineProperty(target, descriptors[i]![0], descriptors[i]![1]);
    return target;
  };
}
