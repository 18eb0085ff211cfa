import { setFlagsFromString } from "node:v8";

/**
 * How far V8 lets the old generation grow past what the last full GC left
 * alive before it collects again: 50% (V8 picks up to 300% by itself).
 *
 * Why: every HTTP/2 request header value reaches JavaScript as an external
 * string, a small object in V8's old space pointing at native memory (a
 * C++ wrapper and nghttp2's buffer). Both are freed only by a full GC, so
 * between full GCs each call leaves ~0.5 KB of old-space garbage and more
 * native memory behind, and glibc keeps the freed native memory resident.
 * With V8's own growth the EventService under load reached 200-240 MiB RSS;
 * bounded, ~130 MiB, for more (concurrently marked) full GCs
 * (bench/README.md, finding 12).
 *
 * V8 reads the flag at each full GC, so setting it after start works; it
 * applies to the whole process, which is what a service process wants.
 */
export const HEAP_GROWING_PERCENT = 50;

export function boundHeapGrowth(): void {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
