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
  write: (line: string) => void = (line) => process.stdout.write(line),
): Logger {
  const min = SEVERITY[level];
  const log = (lvl: LogLevel, msg: string, fields?: LogFields) => {
    if (SEVERITY[lvl] < min) return;
    const line = { time: new Date().toISOString(), level: lvl, ...base, ...activeTraceIds(), msg, ...fields };
    write(JSON.stringify(line, errorReplacer) + "\n");
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

// Errors have no enumerable fields; keep what helps debugging.
function errorReplacer(_key: string, value: unknown) {
  if (value instanceof Error) return { name: value.name, message: value.message, stack: value.stack };
  if (typeof value === "bigint") return value.toString();
  return value;
}
