import { writeSync } from "node:fs";
import type { LogLevel } from "./config.js";
import { activeTraceIds } from "./tracing.js";

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
  const log = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (SEVERITY[lvl] < min) return;
    const entry = { time: isoNow(), level: lvl, ...base, ...activeTraceIds(), msg, ...fields };
    // A replacer makes JSON.stringify call back for every key; most lines
    // (one per RPC) hold only plain values and do not need it.
    write(JSON.stringify(entry, plain(fields) ? undefined : errorReplacer) + "\n");
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

function plain(fields: LogFields | undefined): boolean {
  for (const key in fields) {
    const value = fields[key];
    if (value !== null && typeof value === "object") return false;
    if (typeof value === "bigint") return false;
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
