import { ROOT_CONTEXT, context, trace } from "@opentelemetry/api";
import { describe, expect, it } from "vitest";
import { createLogger, isoNow, type LogFields } from "./logger.js";
import { installTracing } from "./tracing.js";

installTracing();

/** What every line must be: the spread of its parts, as JSON (the logger's general path). */
function expected(line: string, level: string, base: LogFields, ids: object | undefined, msg: string, fields?: LogFields): string {
  const time = (JSON.parse(line) as { time: string }).time;
  const replacer = (_key: string, value: unknown) =>
    value instanceof Error ? { name: value.name, message: value.message, stack: value.stack } : typeof value === "bigint" ? value.toString() : value;
  return JSON.stringify({ time, level, ...base, ...ids, msg, ...fields }, replacer);
}

function capture(base: LogFields = {}) {
  const lines: string[] = [];
  const logger = createLogger("debug", base, (line) => lines.push(line));
  return { logger, lines };
}

const SPAN = { traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", traceFlags: 1 };
const inSpan = (fn: () => void) => context.with(trace.setSpanContext(ROOT_CONTEXT, SPAN), fn);

describe("logger lines", () => {
  it("the time is toISOString's, whatever the order of the milliseconds (its parts are reused)", () => {
    const times = [0, 1, 9, 10, 99, 100, 999, 1000, 1001, 1_764_364_799_999, 1_764_364_800_000, 1_764_364_800_007, 1_764_364_800_042, 1_764_364_800_042, 1_764_364_799_500, 1_767_225_599_999, 1_767_225_600_000, -1, -1001, 1_767_225_600_000, 253_402_300_799_999];
    for (let t = 1_764_364_790_000; t < 1_764_364_810_000; t += 7) times.push(t);
    for (const t of times) expect(isoNow(t)).toBe(new Date(t).toISOString());
    expect(isoNow()).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });


  const cases: { name: string; base: LogFields; msg: string; fields?: LogFields }[] = [
    { name: "no fields", base: {}, msg: "started" },
    { name: "an access log line", base: { service: "events" }, msg: "rpc", fields: { method: "/myevents.v1.EventService/GetEvent", code: "OK", duration_ms: 0.412, protocol: "grpc" } },
    { name: "strings that need escaping", base: { service: 'ev"ents' }, msg: 'say "hi"\n\tnow \u2028 ✓ 🎫', fields: { path: "a\\b", note: "\u0000\u001f", emoji: "🎟️" } },
    { name: "undefined, null, NaN and booleans", base: { service: "s" }, msg: "m", fields: { gone: undefined, none: null, nan: NaN, yes: true, inf: Infinity } },
    { name: "a field named like a base field", base: { service: "events", zone: "a" }, msg: "m", fields: { method: "x", service: "other" } },
    { name: "a field named like a line key", base: { service: "events" }, msg: "m", fields: { msg: "shadow", level: "fake", code: "OK" } },
    { name: "an error and a bigint", base: { service: "events" }, msg: "failed", fields: { error: new Error("boom"), seconds: 12n } },
    { name: "numbers JSON writes differently", base: { service: "s" }, msg: "m", fields: { neg0: -0, big: 1e21, tiny: 5e-7, minf: -Infinity } },
    { name: "a function and a symbol, which JSON leaves out", base: { service: "s" }, msg: "m", fields: { fn: () => 1, sym: Symbol("x"), a: "b" } },
    { name: "long strings", base: { service: "s" }, msg: "x".repeat(100), fields: { text: "\"q\" ".repeat(40) } },
    { name: "a base field named like a line key", base: { time: "then", service: "events" }, msg: "m", fields: { a: 1 } },
  ];
  for (const c of cases) {
    it(`${c.name}: outside and inside a trace`, () => {
      const { logger, lines } = capture(c.base);
      logger.info(c.msg, c.fields);
      inSpan(() => logger.warn(c.msg, c.fields));
      expect(lines).toHaveLength(2);
      expect(lines.every((l) => l.endsWith("\n") && !l.slice(0, -1).includes("\n"))).toBe(true);
      expect(lines[0]!.slice(0, -1)).toBe(expected(lines[0]!, "info", c.base, undefined, c.msg, c.fields));
      expect(lines[1]!.slice(0, -1)).toBe(expected(lines[1]!, "warn", c.base, { trace_id: SPAN.traceId, span_id: SPAN.spanId }, c.msg, c.fields));
    });
  }

  it("numbers are written as JSON.stringify writes them, durations rounded to µs included", () => {
    const { logger, lines } = capture({ service: "events" });
    const values = [
      ...Array.from({ length: 20_000 }, (_, k) => k / 1000), // every µs-rounded ms below 20
      ...Array.from({ length: 2_000 }, () => Math.round(Math.random() * 1e15) / 1000), // up to 1e12
      ...Array.from({ length: 2_000 }, () => Math.random() * 100),
      0.1 + 0.2, 1 / 3, 0.0005, 0.0015, 1e-7, 999_999_999_999.999, 1e12 + 0.5, 2 ** 48 + 0.125, 2 ** 53, -0.412, -1, 1e21, 5e-324, Number.MAX_VALUE,
    ];
    for (const value of values) logger.info("m", { duration_ms: value });
    lines.forEach((line, n) => expect(line.slice(0, -1)).toBe(expected(line, "info", { service: "events" }, undefined, "m", { duration_ms: values[n] })));
  });

  it("a field inherited from the fields' prototype is left out, as JSON.stringify does", () => {
    const { logger, lines } = capture({ service: "events" });
    const fields = Object.assign(Object.create({ inherited: "no" }) as LogFields, { own: "yes" });
    logger.info("m", fields);
    expect(JSON.parse(lines[0]!)).toEqual({ time: expect.any(String), level: "info", service: "events", msg: "m", own: "yes" });
  });

  it("repeated and many different keys and strings keep their own JSON (the logger's JSON caches)", () => {
    const { logger, lines } = capture({ service: "events" });
    const fieldsOf = (i: number) => ({ [`k"${i}`]: `v"${i}`, same: "x" });
    const order = [...Array.from({ length: 5000 }, (_, i) => i), ...Array.from({ length: 10 }, (_, i) => i)];
    for (const i of order) logger.info("m", fieldsOf(i));
    expect(lines).toHaveLength(order.length);
    lines.forEach((line, n) => expect(line.slice(0, -1)).toBe(expected(line, "info", { service: "events" }, undefined, "m", fieldsOf(order[n]!))));
  });

  it("child loggers add their fields after the parent's", () => {
    const { logger, lines } = capture({ service: "bookings" });
    logger.child({ consumer: "booking.confirmed" }).info("applied", { id: "b-1" });
    expect(lines[0]!.slice(0, -1)).toBe(expected(lines[0]!, "info", { service: "bookings", consumer: "booking.confirmed" }, undefined, "applied", { id: "b-1" }));
  });

  it("lines below the level are not written", () => {
    const lines: string[] = [];
    const logger = createLogger("warn", {}, (line) => lines.push(line));
    logger.info("quiet");
    logger.error("loud");
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(["loud"]);
  });
});
