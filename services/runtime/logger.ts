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
  const baseJson = [...baseKeys].some((k) => RESERVED.has(k)) || !simple(base, EMPTY) ? undefined : JSON.stringify(base).slice(1, -1);
  const log = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (SEVERITY[lvl] < min) return;
    if (baseJson !== undefined && simple(fields, baseKeys)) {
      // The common line (one per RPC): the same JSON as below, concatenated
      // instead of building and spreading three objects per line.
      const ids = activeSpanIds();
      let line = `{"time":"${isoNow()}","level":"${lvl}"`;
      if (baseJson !== "") line += "," + baseJson;
      if (ids !== undefined) line += `,"trace_id":"${ids.traceId}","span_id":"${ids.spanId}"`; // hex: nothing to escape
      line += ',"msg":' + JSON.stringify(msg);
      const rest = fields === undefined ? "{}" : JSON.stringify(fields);
      write(line + (rest.length > 2 ? "," + rest.slice(1) : "}") + "\n");
      return;
    }
    const entry = { time: isoNow(), level: lvl, ...base, ...activeTraceIds(), msg, ...fields };
    // A replacer makes JSON.stringify call back for every key; lines with
    // only plain values take the path above.
    write(JSON.stringify(entry, simple(fields, EMPTY) ? undefined : errorReplacer) + "\n");
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

// Under load several lines share a millisecond (one per RPC): format it once.
let isoMs = -1;
let iso = "";
function isoNow(): string {
  const now = Date.now();
  if (now !== isoMs) {
    isoMs = now;
    iso = new Date(now).toISOString();
  }
  return iso;
}

// Keys every line has; a field of the same name changes the line's key order, which only the spread gets right.
const RESERVED = new Set(["time", "level", "trace_id", "span_id", "msg"]);
const EMPTY = new Set<string>();

/** Only plain values (no objects, errors or bigints) and no key that the line already has. */
function simple(fields: LogFields | undefined, baseKeys: Set<string>): boolean {
  for (const key in fields) {
    const value = fields[key];
    if (value !== null && typeof value === "object") return false;
    if (typeof value === "bigint") return false;
    if (baseKeys !== EMPTY && (baseKeys.has(key) || RESERVED.has(key))) return false;
  }
  return true;
}

let pending: string[] = [];
let scheduled = false;

/**
 * Stdout with the lines of one event-loop turn written together. Writes to
 * files and pipes are synchronous system calls in Node; with one access log
 * line per RPC they cost more than the rest of the logging. Lines wait at
 * most until the current I/O callbacks are done (setImmediate), and are
 * flushed synchronously when the process exits, so none is lost on
 * process.exit().
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

process.once("exit", () => {
  if (pending.length === 0) return;
  const text = pending.join("");
  pending = [];
  try {
    writeSync(1, text);
  } catch {
    // stdout is gone: nothing left to tell
  }
});

// Errors have no enumerable fields; keep what helps debugging.
function errorReplacer(_key: string, value: unknown) {
  if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
  if (typeof value === "bigint") return value.toString();
  return value;
}
