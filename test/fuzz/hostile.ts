// Hostile values and hostile requests, generated from a seed so that every
// failure reproduces: the same seed and count give the same requests.
import {
  create,
  toBinary,
  toJson,
  ScalarType,
  type DescField,
  type DescMessage,
  type DescMethod,
  type JsonValue,
  type Message,
} from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";

/** mulberry32: small, fast, good enough to pick fuzz cases. */
export class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(max: number): number {
    return Math.floor(this.next() * max);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

/** Strings that have broken parsers, databases and terminals before. */
export const HOSTILE_STRINGS: readonly string[] = [
  "",
  " ",
  "\t\n\r",
  "\u0000",
  "a\u0000b",
  "\uD800", // lone high surrogate
  "\uDFFF", // lone low surrogate
  "x\uDC00y\uD83D",
  "\u202Eevil\u202C", // right-to-left override
  "\u200B\u200D\uFEFF", // zero-width and BOM
  "e" + "\u0301".repeat(300), // stacked combining marks
  "\u0301",
  "😀".repeat(100),
  "👩‍👩‍👧‍👦",
  "Ω≈ç√∫˜µ≤≥÷",
  "\u00A0",
  "𝕏".repeat(201),
  "x".repeat(64),
  "x".repeat(65),
  "x".repeat(200),
  "x".repeat(201),
  "x".repeat(10_000),
  "\\",
  '"',
  "'; DROP TABLE events; --",
  '{"$gt": ""}',
  "$where",
  "$regex",
  "a.b.c",
  ".*",
  "(a+)+$",
  "[",
  "\\E\\Q",
  "../../etc/passwd",
  "%00",
  "%",
  "%ZZ",
  "?x=1&y=2",
  "#frag",
  "/",
  ":cancel",
  "<script>alert(1)</script>",
  "${jndi:ldap://x}",
  "NaN",
  "null",
  "undefined",
  "__proto__",
  "constructor",
  "toString",
  "-1",
  "9".repeat(40),
  "DE",
  "de",
  "Main",
];

export const HOSTILE_INTS: readonly number[] = [
  0, 1, -1, 2, 10, 11, 100, 100_000, 100_001, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 32, -(2 ** 32), 2 ** 53, Number.MAX_SAFE_INTEGER,
];

/** Timestamps at and beyond the edges of what google.protobuf.Timestamp allows. */
export const HOSTILE_TIMESTAMPS: readonly { seconds: bigint; nanos: number }[] = [
  { seconds: 0n, nanos: 0 },
  { seconds: -62_135_596_800n, nanos: 0 },
  { seconds: -62_135_596_801n, nanos: 0 },
  { seconds: 253_402_300_799n, nanos: 999_999_999 },
  { seconds: 253_402_300_800n, nanos: 0 },
  { seconds: 9_223_372_036_854_775_807n, nanos: 0 },
  { seconds: -9_223_372_036_854_775_808n, nanos: 0 },
  { seconds: 2_000_000_000n, nanos: -1 },
  { seconds: 2_000_000_000n, nanos: 1_000_000_000 },
  { seconds: 2_000_000_000n, nanos: 2 ** 31 - 1 },
  { seconds: BigInt(Math.floor(Date.now() / 1000) + 86_400), nanos: 0 },
];

/** JSON values of every type, for fields that expect another. */
export const HOSTILE_JSON: readonly JsonValue[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  1e308,
  -1e308,
  2 ** 31,
  "",
  "1",
  "-1",
  "1e3",
  "0x10",
  "NaN",
  "Infinity",
  "9223372036854775808",
  "-9223372036854775809",
  "1970-01-01T00:00:00Z",
  "0000-01-01T00:00:00Z",
  "10000-01-01T00:00:00Z",
  "2030-02-30T00:00:00Z",
  "not a time",
  "\uD800",
  [],
  [1, "x", null],
  {},
  { $gt: "" },
  { __proto__: { polluted: true } },
];

/** Raw JSON texts that are not valid JSON (or are, but absurd). */
export const BROKEN_JSON: readonly string[] = [
  "",
  "{",
  "}",
  "[",
  "null",
  "[]",
  "1",
  '"str"',
  "{'single': 'quotes'}",
  '{"a":1,}',
  '{"a":NaN}',
  '{"a":1e99999}',
  '{"a":"\\uD800"}',
  '{"a":"\\u0000"}',
  '{"a":"\\x00"}',
  "\u0000",
  "\uFEFF{}",
  "[".repeat(5_000) + "]".repeat(5_000),
  '{"a":'.repeat(2_000) + "1" + "}".repeat(2_000),
  '{"__proto__":{"polluted":true}}',
  '{"constructor":{"prototype":{"polluted":true}}}',
];

/**
 * A message with hostile values in every field (recursively, bounded).
 * Built as a plain object: protobuf-es's reflection refuses strings that
 * are not valid UTF-16 (lone surrogates), and those are the point.
 */
export function hostileMessage<D extends DescMessage>(rnd: Random, desc: D, depth = 0): Message {
  const init: Record<string, unknown> = {};
  for (const field of desc.fields) {
    if (rnd.chance(0.25) || field.fieldKind === "map") continue; // leave some unset; no maps in our contracts
    if (field.fieldKind === "list") {
      // Past the limits (max 50 halls) now and then; rarely far past, as that costs CPU on every layer.
      const count = rnd.chance(0.02) ? 200 : rnd.pick([0, 1, 2, 3, 51]);
      init[field.localName] = Array.from({ length: count }, () => hostileValue(rnd, field, depth)).filter((v) => v !== undefined);
      continue;
    }
    const value = hostileValue(rnd, field, depth);
    if (value !== undefined) init[field.localName] = value;
  }
  return create(desc, init as never) as Message;
}

function hostileValue(rnd: Random, field: DescField, depth: number): unknown {
  const message = field.fieldKind === "message" || (field.fieldKind === "list" && field.listKind === "message") ? field.message : undefined;
  if (message) {
    if (message.typeName === TimestampSchema.typeName) return create(TimestampSchema, rnd.pick(HOSTILE_TIMESTAMPS));
    if (depth > 2) return undefined;
    return hostileMessage(rnd, message, depth + 1);
  }
  const enumDesc = field.fieldKind === "enum" || (field.fieldKind === "list" && field.listKind === "enum") ? field.enum : undefined;
  if (enumDesc) return rnd.pick([0, 1, 2, 3, -1, 2 ** 31 - 1]);
  const scalar = field.fieldKind === "scalar" || (field.fieldKind === "list" && field.listKind === "scalar") ? field.scalar : undefined;
  switch (scalar) {
    case ScalarType.STRING:
      return rnd.pick(HOSTILE_STRINGS);
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return rnd.pick(HOSTILE_INTS) | 0;
    case ScalarType.BOOL:
      return rnd.chance(0.5);
    default:
      return undefined;
  }
}

/** Binary encodings that are not (quite) protobuf, built from a message's real encoding. */
export function brokenBinary(rnd: Random, desc: DescMessage, valid: Uint8Array): Uint8Array {
  const stringField = desc.fields.find((f) => f.fieldKind === "scalar" && f.scalar === ScalarType.STRING);
  const tag = (n: number, wire: number) => (n << 3) | wire;
  switch (rnd.int(10)) {
    case 0:
      return rnd.bytes(rnd.int(64));
    case 1:
      return valid.subarray(0, Math.max(0, valid.length - 1 - rnd.int(Math.max(1, valid.length))));
    case 2: {
      const copy = valid.slice();
      for (let i = 0; i < 3 && copy.length > 0; i++) {
        const at = rnd.int(copy.length);
        copy[at] = copy[at]! ^ (1 << rnd.int(8));
      }
      return copy;
    }
    case 3: // invalid UTF-8 in a string field: lone continuation, overlong NUL, CESU surrogate, 0xFF
      if (stringField) {
        const bad = rnd.pick([[0x80], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xff, 0xfe], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80]]);
        return concat(valid, Uint8Array.of(tag(stringField.number, 2), bad.length, ...bad));
      }
      return rnd.bytes(8);
    case 4: // a varint that never ends
      return concat(valid, Uint8Array.of(tag(desc.fields[0]?.number ?? 1, 0), ...new Array(11).fill(0xff)));
    case 5: // a length prefix far beyond the message
      return concat(valid, Uint8Array.of(tag(desc.fields[0]?.number ?? 1, 2), 0xff, 0xff, 0xff, 0xff, 0x0f, 0x41));
    case 6: // wrong wire type for known fields
      return Uint8Array.from(desc.fields.flatMap((f) => [tag(f.number, 5), 1, 2, 3, 4]));
    case 7: // field number 0, and the reserved group wire types
      return rnd.pick([Uint8Array.of(0x00, 0x01), Uint8Array.of(tag(1, 3), tag(1, 4)), Uint8Array.of(tag(1, 4)), Uint8Array.of(tag(19_000, 0), 1)]);
    case 8: // unknown fields, valid encoding
      return concat(valid, Uint8Array.of(tag(999, 2), 3, 0x61, 0x62, 0x63, tag(1000, 0), 0xff, 0x01));
    default: // a nested message nested deeper than any decoder should follow
      return nestedDeep(desc, 120);
  }
}

function nestedDeep(desc: DescMessage, depth: number): Uint8Array {
  const messageField = desc.fields.find((f) => f.fieldKind === "message");
  const number = messageField?.number ?? 1;
  let inner: Uint8Array = new Uint8Array(0);
  for (let i = 0; i < depth; i++) {
    const len = varint(inner.length);
    inner = concat(Uint8Array.of((number << 3) | 2, ...len), inner);
  }
  return inner;
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** JSON bodies with the wrong shapes: wrong types, unknown fields, broken text. */
export function brokenJson(rnd: Random, desc: DescMessage, valid: JsonValue): string {
  switch (rnd.int(4)) {
    case 0:
      return rnd.pick(BROKEN_JSON);
    case 1: {
      // every field a value of a random (usually wrong) type
      const body: Record<string, JsonValue> = {};
      for (const f of desc.fields) body[rnd.chance(0.5) ? f.jsonName : f.name] = rnd.pick(HOSTILE_JSON);
      return JSON.stringify(body);
    }
    case 2: {
      const body = { ...(valid as Record<string, JsonValue>), [rnd.pick(["unknownField", "$where", "__proto__", "", "a".repeat(1000)])]: rnd.pick(HOSTILE_JSON) };
      return JSON.stringify(body);
    }
    default: {
      // a valid message's JSON with one field replaced
      const field = rnd.pick(desc.fields);
      return JSON.stringify({ ...(valid as Record<string, JsonValue>), [field.jsonName]: rnd.pick(HOSTILE_JSON) });
    }
  }
}

/** A request body in both encodings: the hostile message, or bytes/text that are not one. */
export function hostileBody(rnd: Random, method: DescMethod, valid: Message | undefined): { binary: Uint8Array; json: string } {
  const desc = method.input;
  const message = valid && rnd.chance(0.3) ? valid : hostileMessage(rnd, desc);
  const binary = toBinary(desc, message);
  let json: JsonValue;
  try {
    json = toJson(desc, message);
  } catch {
    // e.g. a timestamp outside years 1..9999 has no JSON form: send it as text anyway
    json = { [desc.fields[0]?.jsonName ?? "x"]: "10000-01-01T00:00:00Z" };
  }
  if (rnd.chance(0.35)) return { binary: brokenBinary(rnd, desc, binary), json: brokenJson(rnd, desc, json) };
  return { binary, json: JSON.stringify(json) };
}
