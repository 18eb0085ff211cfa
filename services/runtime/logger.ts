import { writeSync } from "node:fs";
import type { LogLevel } from "./config.js";
import { activeSpanIds, activeTraceIds } from "./tracing.js";

const SEVERITY: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

/**
 * Structured JSON logs, one object per line on stdout, so that any log
 * shipper can parse them. Child loggers carry fixed fields (service name).
 * A line written inside a trace (an RPC, a consumed message) carries its
 * `trace_id` and `span_id`, read from the active context.
 */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
  enabled(level: LogLevel): boolean;
}

export function createLogger(
  level: LogLevel,
  base: LogFields = {},
  write: (line: string) => void = bufferedStdout,
): Logger {
  const min = SEVERITY[level];
  // The base fields' JSON, written once; used when no field can collide with them.
  const baseKeys = new Set(Object.keys(base));
  const baseJson = [...baseKeys].some((k) => RESERVED.has(k)) || !simple(base) ? undefined : JSON.stringify(base).slice(1, -1);
  const log = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (SEVERITY[lvl] < min) return;
    const rest = baseJson === undefined ? undefined : fields === undefined ? "" : plainFieldsJson(fields, baseKeys);
    if (rest !== undefined) {
      // The common line (one per RPC): the same JSON as below, concatenated
      // instead of building and spreading three objects per line.
      const ids = activeSpanIds();
      let line = `{"time":"${isoNow()}","level":"${lvl}"`;
      if (baseJson !== "") line += "," + baseJson;
      if (ids !== undefined) line += `,"trace_id":"${ids.traceId}","span_id":"${ids.spanId}"`; // hex: nothing to escape
      write(line + ',"msg":' + jsonOf(msg) + rest + "}\n");
      return;
    }
    const entry = { time: isoNow(), level: lvl, ...base, ...activeTraceIds(), msg, ...fields };
    // A replacer makes JSON.stringify call back for every key; lines with
    // only plain values take the path above.
    write(JSON.stringify(entry, simple(fields) ? undefined : errorReplacer) + "\n");
  };
  return {
    debug: (msg, fields) => log("debug", msg, fields),
    info: (msg, fields) => log("info", msg, fields),
    warn: (msg, fields) => log("warn", msg, fields),
    error: (msg, fields) => log("error", msg, fields),
    child: (fields) => createLogger(level, { ...base, ...fields }, write),
    enabled: (lvl) => SEVERITY[lvl] >= min,
  };
}

// Under load several lines share a millisecond (one per RPC): format it once,
// and the date and time up to the second once per second (toISOString per
// millisecond was ~1-2 µs a line at a few calls per millisecond).
let isoMs = -1;
let iso = "";
let isoSecond = -1;
let isoPrefix = "";
export function isoNow(now = Date.now()): string {
  if (now === isoMs) return iso;
  isoMs = now;
  const ms = now % 1000;
  if (ms < 0) return (iso = new Date(now).toISOString()); // before 1970 (never, but exact): no reuse
  if (now - ms !== isoSecond) {
    isoSecond = now - ms;
    isoPrefix = new Date(isoSecond).toISOString().slice(0, 20); // "YYYY-MM-DDTHH:mm:ss."
  }
  return (iso = isoPrefix + (ms < 10 ? "00" : ms < 100 ? "0" : "") + ms + "Z");
}

/**
 * A number as JSON writes it. The common non-integer is a duration in ms
 * rounded to µs (every access line has one), which V8's shortest
 * round-trip formatting takes ~0.3 µs for; from its count of thousandths
 * it is a few integer steps. Same text: for such a value (below 1e12) the
 * decimal with those three places, trailing zeros dropped, is the shortest
 * that reads back as it, which is what String() writes.
 */
function numberJson(value: number): string {
  if (!Number.isFinite(value)) return "null";
  const thousandths = Math.round(value * 1000);
  if (value <= 0 || value >= 1e12 || thousandths / 1000 !== value || Number.isInteger(value)) return String(value);
  const whole = Math.floor(thousandths / 1000);
  const fraction = thousandths - whole * 1000; // 1-999: not an integer
  const digits = fraction < 10 ? `00${fraction}` : fraction < 100 ? `0${fraction}` : String(fraction);
  return `${whole}.${fraction % 100 === 0 ? digits[0] : fraction % 10 === 0 ? digits.slice(0, 2) : digits}`;
}

// Keys every line has; a field of the same name changes the line's key order, which only the spread gets right.
const RESERVED = new Set(["time", "level", "trace_id", "span_id", "msg"]);

/** Only plain values: no objects, errors or bigints. */
function simple(fields: LogFields | undefined): boolean {
  for (const key in fields) {
    const value = fields[key];
    if (value !== null && typeof value === "object") return false;
    if (typeof value === "bigint") return false;
  }
  return true;
}

/**
 * The JSON of `fields`' members, each led by a comma (what JSON.stringify
 * writes inside the braces), from cached JSON of keys and short strings:
 * an access log line repeats the same keys, method, code and protocol on
 * every call, and JSON.stringify of the whole object was most of the
 * line's cost. Undefined when the line needs the general path: a value
 * that is not a plain one (an object, an error, a bigint, a function, a
 * symbol), a key the line already has (see RESERVED) or one that is not
 * the object's own.
 */
function plainFieldsJson(fields: LogFields, baseKeys: Set<string>): string | undefined {
  let out = "";
  for (const key in fields) {
    if (baseKeys.has(key) || RESERVED.has(key) || !Object.hasOwn(fields, key)) return undefined;
    const value = fields[key];
    let json: string;
    switch (typeof value) {
      case "string":
        json = jsonOf(value);
        break;
      case "number":
        json = numberJson(value);
        break;
      case "boolean":
        json = value ? "true" : "false";
        break;
      case "undefined":
        continue; // JSON leaves the key out
      default:
        if (value !== null) return undefined;
        json = "null";
    }
    out += memberPrefix(key) + json;
  }
  return out;
}

// Bounded caches: a field that carries ids or free text must not grow them forever.
const STRING_JSON_LIMIT = 4096;

// `,"key":` per key: fewer intermediate strings per field than joining its parts.
const memberPrefixes = new Map<string, string>();
function memberPrefix(key: string): string {
  let prefix = memberPrefixes.get(key);
  if (prefix === undefined) {
    prefix = "," + JSON.stringify(key) + ":";
    if (memberPrefixes.size >= STRING_JSON_LIMIT) memberPrefixes.clear();
    memberPrefixes.set(key, prefix);
  }
  return prefix;
}

// The short strings that repeat (messages, methods, codes, protocols), as JSON.
const stringJson = new Map<string, string>();
function jsonOf(value: string): string {
  if (value.length > 64) return JSON.stringify(value);
  let json = stringJson.get(value);
  if (json === undefined) {
    json = JSON.stringify(value);
    if (stringJson.size >= STRING_JSON_LIMIT) stringJson.clear();
    stringJson.set(value, json);
  }
  return json;
}

let pending: string[] = [];
let scheduled = false;

/**
 * Stdout with the lines of one event-loop turn written together. Each write
 * is a system call; with one access log line per RPC they cost more than
 * the rest of the logging. Lines wait at most until the current I/O
 * callbacks are done (setImmediate). Before a planned exit, flushStdout()
 * waits until stdout has taken them; lines still here at process.exit()
 * are written synchronously.
 */
export function bufferedStdout(line: string): void {
  pending.push(line);
  if (scheduled) return;
  scheduled = true;
  setImmediate(flush);
}

function flush() {
  scheduled = false;
  if (pending.length === 0) return;
  const text = pending.length === 1 ? pending[0]! : pending.join("");
  pending = [];
  process.stdout.write(text);
}

/**
 * Writes the buffered lines and resolves once stdout has taken everything
 * written to it (or after `timeoutMs`, so a reader that never reads cannot
 * hold the process). For a pipe, which is stdout in a container, Node
 * writes asynchronously on POSIX: what is still queued when the process
 * exits is lost, so a process that is about to exit waits for this.
 */
export function flushStdout(timeoutMs = 2_000): Promise<void> {
  flush();
  if (process.stdout.writableLength === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    // Called after every earlier write has completed: writes complete in order.
    process.stdout.write("", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

process.once("exit", () => {
  if (pending.length === 0) return;
  const bytes = Buffer.from(pending.join(""));
  pending = [];
  writeAllSync(1, bytes, 1_000);
});

const pause = new Int32Array(new SharedArrayBuffer(4));

/** All of `bytes` to `fd`, waiting out a full non-blocking pipe (EAGAIN) for at most `timeoutMs`. */
function writeAllSync(fd: number, bytes: Buffer, timeoutMs: number): void {
  const giveUpAt = Date.now() + timeoutMs;
  let offset = 0;
  while (offset < bytes.length) {
    try {
      offset += writeSync(fd, bytes, offset);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EAGAIN" || Date.now() >= giveUpAt) return; // stdout is gone, or nobody reads it
      Atomics.wait(pause, 0, 0, 5);
    }
  }
}

// Errors have no enumerable fields; keep what helps debugging.
function errorReplacer(_key: string, value: unknown) {
  if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
  if (typeof value === "bigint") return value.toString();
  return value;
}
