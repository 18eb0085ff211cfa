// A JSON writer for protobuf-es v2 messages that returns exactly the string of
// `toJsonString(schema, message)` (default options: implicit zero values left out, enums by
// name, lowerCamelCase JSON names, no registry) without its intermediate objects.
//
// Why: protobuf-es builds a reflect wrapper per message, a JSON object tree, a Date per
// Timestamp, and then JSON.stringify walks the tree; for the gateway's Connect JSON answers
// that was a few % of its CPU plus garbage. Here a plan is compiled once per message type
// (WeakMap cache), then each call writes the JSON text as UTF-8 into one reused buffer, from
// which the caller gets the bytes (what the gateway sends: encodeJsonBytes) or the string.
//
// Exactness rules (mirrors node_modules/@bufbuild/protobuf/dist/esm/to-json.js, reflect.js):
// - keys are written in field-number order (reflect's `sortedFields`); JSON.stringify keeps
//   that order unless a key is an array index, so such names (and "__proto__", which an
//   object literal swallows) make the type fall back;
// - presence is protobuf-es's `unsafeIsSet` (as in binary-encoder.ts), required fields unset throw;
// - strings are escaped as JSON.stringify does; numbers print as JSON.stringify prints them;
//   float NaN/±Infinity are the strings; 64-bit integers are decimal strings; bytes are
//   standard base64 with padding; enums are names, or the number when not a known value;
// - map keys are written in Object.keys order (the order JSON.stringify would see, as the
//   keys are the same strings), so keys reflect would rewrite ("01" for an int32) fall back;
// - Timestamp and Duration are their RFC 3339 / "1.5s" strings, wrappers their primitive
//   (unwrapped in singular fields outside oneofs); Any, Struct, Value, ListValue and FieldMask
//   are not written here: a message holding one falls back for that call.
// Anything unsupported or unexpected (invalid values, wrong $typeName, values protobuf-es would
// refuse or print oddly) throws internally and the call is redone with `toJsonString`, so the
// output and the errors are always protobuf-es's own.
import { protoInt64, toJsonString, type DescEnum, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";
import { isWrapperDesc } from "@bufbuild/protobuf/wkt";

// ---- plan ---------------------------------------------------------------------------------

/** How a message type is written. */
const enum W {
  Object = 1, // a JSON object of its fields
  Timestamp = 2,
  Duration = 3,
  Wrapper = 4, // google.protobuf.*Value as a message: its `value`
  Unsupported = 5, // Any, Struct, Value, ListValue, FieldMask, or names JSON.stringify would reorder
}

/** What a field, a list item or a map value holds. */
const enum K {
  Scalar = 1,
  Enum = 2,
  Message = 3,
  Unwrapped = 4, // singular wrapper field outside a oneof: the primitive itself
}

const enum P {
  Implicit = 0,
  Explicit = 1,
  Oneof = 2,
  Required = 3,
}

// protobuf-es's ScalarType values as a const enum (literal `case` labels, as in binary-encoder.ts).
const enum S {
  DOUBLE = 1,
  FLOAT = 2,
  INT64 = 3,
  UINT64 = 4,
  INT32 = 5,
  FIXED64 = 6,
  FIXED32 = 7,
  BOOL = 8,
  STRING = 9,
  BYTES = 12,
  UINT32 = 13,
  SFIXED32 = 15,
  SFIXED64 = 16,
  SINT32 = 17,
  SINT64 = 18,
}

interface EnumPlan {
  zero: number; // the first value: implicit presence leaves it out
  isNull: boolean; // google.protobuf.NullValue: always `null`
  names: Map<number, Uint8Array>; // known values, quoted, as UTF-8
}

interface FieldPlan {
  presence: P;
  name: string; // localName
  oneof: string; // oneof localName (P.Oneof only)
  keyFirst: Uint8Array; // `"jsonName":` as UTF-8
  keyNext: Uint8Array; // `,"jsonName":`
  list: boolean;
  map: boolean;
  kind: K; // of the value, list item or map value
  t: number; // scalar type (Scalar, Unwrapped: the wrapped type; map: the value's)
  longAsString: boolean; // 64-bit strings are parsed (and so normalised) by reflect
  en: EnumPlan | undefined;
  sub: Plan | undefined;
  keyT: number; // map key scalar type
}

interface Plan {
  typeName: string;
  how: W;
  fields: FieldPlan[];
  wrapT: number; // W.Wrapper: the type of `value`
}

const plans = new WeakMap<DescMessage, Plan>();
const enumPlans = new WeakMap<DescEnum, EnumPlan>();

function getPlan(desc: DescMessage): Plan {
  let plan = plans.get(desc);
  if (plan) return plan;
  // Registered before compiling the fields, so recursive types resolve to this object.
  plan = { typeName: desc.typeName, how: wktKind(desc), fields: [], wrapT: 0 };
  plans.set(desc, plan);
  if (plan.how === W.Wrapper) plan.wrapT = desc.fields[0]!.scalar!;
  if (plan.how !== W.Object) return plan;
  const sorted = desc.fields.concat().sort((a, b) => a.number - b.number);
  const names = new Set<string>();
  for (const f of sorted) {
    // An object literal would put an array-index key first, and turn "__proto__" into a prototype.
    if (names.has(f.jsonName) || f.jsonName === "__proto__" || /^(0|[1-9][0-9]*)$/.test(f.jsonName)) {
      plan.how = W.Unsupported;
      plan.fields = [];
      return plan;
    }
    names.add(f.jsonName);
    plan.fields.push(compileField(f));
  }
  return plan;
}

/** protobuf-es's tryWktToJson decides by type name. */
function wktKind(desc: DescMessage): W {
  switch (desc.typeName) {
    case "google.protobuf.Timestamp":
      return W.Timestamp;
    case "google.protobuf.Duration":
      return W.Duration;
    case "google.protobuf.Any":
    case "google.protobuf.FieldMask":
    case "google.protobuf.Struct":
    case "google.protobuf.Value":
    case "google.protobuf.ListValue":
      return W.Unsupported;
  }
  return desc.typeName.startsWith("google.protobuf.") && isWrapperDesc(desc) ? W.Wrapper : W.Object;
}

function getEnumPlan(desc: DescEnum): EnumPlan {
  let plan = enumPlans.get(desc);
  if (plan) return plan;
  const names = new Map<number, Uint8Array>();
  // `desc.value` is what enumToJson looks names up in (the last of aliased values).
  for (const v of Object.values(desc.value)) names.set(v.number, Buffer.from(JSON.stringify(v.name)));
  plan = { zero: desc.values[0]!.number, isNull: desc.typeName === "google.protobuf.NullValue", names };
  enumPlans.set(desc, plan);
  return plan;
}

function compileField(f: DescField): FieldPlan {
  const key = JSON.stringify(f.jsonName) + ":";
  const p: FieldPlan = {
    presence: f.oneof ? P.Oneof : f.presence === 3 ? P.Required : f.presence === 2 ? P.Implicit : P.Explicit,
    name: f.localName,
    oneof: f.oneof ? f.oneof.localName : "",
    keyFirst: Buffer.from(key),
    keyNext: Buffer.from("," + key),
    list: false,
    map: false,
    kind: K.Scalar,
    t: 0,
    longAsString: false,
    en: undefined,
    sub: undefined,
    keyT: 0,
  };
  switch (f.fieldKind) {
    case "scalar":
      p.t = f.scalar;
      p.longAsString = f.longAsString;
      break;
    case "enum":
      p.kind = K.Enum;
      p.en = getEnumPlan(f.enum);
      break;
    case "message":
      p.sub = getPlan(f.message);
      if (!f.oneof && isWrapperDesc(f.message)) {
        // reflect's messageToReflect wraps the primitive again; its `value` is not longAsString
        p.kind = K.Unwrapped;
        p.t = f.message.fields[0]!.scalar!;
      } else {
        p.kind = K.Message;
      }
      break;
    case "list":
      p.list = true;
      if (f.listKind === "message") {
        p.kind = K.Message;
        p.sub = getPlan(f.message);
      } else if (f.listKind === "enum") {
        p.kind = K.Enum;
        p.en = getEnumPlan(f.enum);
      } else {
        p.t = f.scalar;
        p.longAsString = f.longAsString;
      }
      break;
    case "map":
      p.map = true;
      p.keyT = f.mapKey;
      if (f.mapKind === "message") {
        p.kind = K.Message;
        p.sub = getPlan(f.message);
      } else if (f.mapKind === "enum") {
        p.kind = K.Enum;
        p.en = getEnumPlan(f.enum);
      } else {
        p.t = f.scalar; // map values are not passed through longToReflect
      }
      break;
  }
  return p;
}

// ---- public API ---------------------------------------------------------------------------

/** Calls redone with toJsonString because the fast path met something it does not write (tests). */
export const jsonEncoderStats: { fallbacks: number; lastError: unknown } = { fallbacks: 0, lastError: undefined };

/** Whether messages of this type are written by the fast path (false: always toJsonString). */
export function isJsonFastPathType(schema: DescMessage): boolean {
  return getPlan(schema).how !== W.Unsupported;
}

/** `toJsonString(schema, message)` with default options, the same string. */
export function encodeJson(schema: DescMessage, message: Message): string {
  if (!writeFast(schema, message)) return toJsonString(schema, message);
  return buf.utf8Slice(0, pos);
}

/** `Buffer.from(toJsonString(schema, message))`: the same string's UTF-8 bytes, in a Buffer of their own. */
export function encodeJsonBytes(schema: DescMessage, message: Message): Buffer {
  if (!writeFast(schema, message)) return Buffer.from(toJsonString(schema, message));
  // allocUnsafe takes small sizes from node's pool, as Buffer.from(string) does
  const bytes = Buffer.allocUnsafe(pos);
  buf.copy(bytes, 0, 0, pos);
  return bytes;
}

/** Writes the message's JSON to buf[0, pos); false: not supported here, protobuf-es decides. */
function writeFast(schema: DescMessage, message: Message): boolean {
  const plan = getPlan(schema);
  if (plan.how === W.Unsupported) return false;
  if (buf.length > SCRATCH_KEEP) buf = Buffer.allocUnsafe(SCRATCH_BYTES) as FastBuffer; // a huge message's buffer is not kept
  pos = 0;
  try {
    writeMessage(plan, message);
    return true;
  } catch (e) {
    jsonEncoderStats.fallbacks++;
    jsonEncoderStats.lastError = e;
    return false;
  }
}

// ---- output -------------------------------------------------------------------------------

/** Node's Buffer has these (what toString/write end up calling), untyped. */
type FastBuffer = Buffer & { utf8Write(string: string, offset: number): number; utf8Slice(start: number, end: number): string };
const SCRATCH_BYTES = 4096;
const SCRATCH_KEEP = 1 << 20;
/** The JSON text as UTF-8 (bytes [0, pos)), reused by every call. */
let buf = Buffer.allocUnsafe(SCRATCH_BYTES) as FastBuffer;
let pos = 0;

/** Room for n more bytes. */
function ensure(n: number): void {
  if (pos + n <= buf.length) return;
  let size = buf.length * 2;
  while (size < pos + n) size *= 2;
  const grown = Buffer.allocUnsafe(size) as FastBuffer;
  buf.copy(grown, 0, 0, pos);
  buf = grown;
}

// The loops below copy `buf` and `pos` into locals: module variables would be loaded and
// stored on every byte.

function writeBytes(bytes: Uint8Array): void {
  const n = bytes.length;
  ensure(n);
  const b = buf;
  let p = pos;
  for (let i = 0; i < n; i++) b[p++] = bytes[i]!;
  pos = p;
}

/** A string known to be ASCII that JSON.stringify would not escape (numbers, fixed text). */
function writeAscii(s: string): void {
  const n = s.length;
  ensure(n);
  const b = buf;
  let p = pos;
  for (let i = 0; i < n; i++) b[p++] = s.charCodeAt(i);
  pos = p;
}

/** JSON.stringify(s) as UTF-8: printable ASCII is copied here, anything else goes to the native call. */
function writeString(s: string): void {
  const n = s.length;
  if (n > 64) return writeStringSlow(s);
  ensure(n + 2);
  const b = buf;
  let p = pos;
  b[p++] = 0x22;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    // control characters, '"', '\\' are escaped; non-ASCII (lone surrogates: escaped) is left to the slow path
    if (c < 0x20 || c > 0x7f || c === 0x22 || c === 0x5c) return writeStringSlow(s);
    b[p++] = c;
  }
  b[p++] = 0x22;
  pos = p;
}

function writeStringSlow(s: string): void {
  // JSON.stringify escapes lone surrogates, so the UTF-8 below is the string's exactly
  const quoted = JSON.stringify(s);
  ensure(quoted.length * 3);
  pos += buf.utf8Write(quoted, pos);
}

/** A finite number as JSON.stringify prints it. */
function writeNumber(v: number): void {
  if ((v | 0) === v && !Object.is(v, -0)) {
    // int32 (most numbers here): digits without a string
    ensure(11);
    if (v < 0) {
      buf[pos++] = 0x2d;
      if (v === -2147483648) return writeAscii("2147483648");
      v = -v;
    }
    if (v < 10) {
      buf[pos++] = 0x30 + v;
      return;
    }
    let digits = 1;
    for (let t = v; t >= 10; t = (t / 10) | 0) digits++;
    pos += digits;
    for (let i = 1; i <= digits; i++) {
      buf[pos - i] = 0x30 + (v % 10);
      v = (v / 10) | 0;
    }
    return;
  }
  writeAscii(String(v));
}

// ---- writing ------------------------------------------------------------------------------

class Unsupported extends Error {}
function bad(): never {
  throw new Unsupported("value not written by the fast path");
}

const hasOwn = Object.prototype.hasOwnProperty;

/** What presentValue answers for a field that is not written. */
const ABSENT = Symbol("absent");

/** The field's value when protobuf-es writes the field (its `isSet`), else ABSENT. */
function presentValue(f: FieldPlan, m: any): any {
  switch (f.presence) {
    case P.Oneof: {
      const o = m[f.oneof]; // undefined throws here, as in protobuf-es, and we fall back
      return o.case === f.name ? o.value : ABSENT;
    }
    case P.Implicit: {
      const v = m[f.name];
      if (f.list) {
        if (!Array.isArray(v)) bad();
        return v.length === 0 ? ABSENT : v;
      }
      if (f.map) {
        if (typeof v !== "object" || v === null) bad();
        return Object.keys(v).length === 0 ? ABSENT : v;
      }
      if (f.kind === K.Message || f.kind === K.Unwrapped) bad(); // protobuf-es throws
      if (f.kind === K.Enum) return v === f.en!.zero ? ABSENT : v;
      return isScalarZero(f.t, v) ? ABSENT : v;
    }
    default: {
      const v = m[f.name];
      if (v !== undefined && hasOwn.call(m, f.name)) return v;
      if (f.presence === P.Required) bad(); // protobuf-es throws "required field not set"
      return ABSENT;
    }
  }
}

/** protobuf-es's isScalarZeroValue. */
function isScalarZero(t: number, v: any): boolean {
  switch (t) {
    case S.BOOL:
      return v === false;
    case S.STRING:
      return v === "";
    case S.BYTES:
      return v instanceof Uint8Array && v.byteLength === 0;
    case S.DOUBLE:
    case S.FLOAT:
      return Object.is(v, 0);
    default:
      return v == 0;
  }
}

function writeMessage(plan: Plan, m: any): void {
  if (typeof m !== "object" || m === null || m.$typeName !== plan.typeName) bad();
  switch (plan.how) {
    case W.Object:
      break;
    case W.Timestamp:
      return writeTimestamp(m);
    case W.Duration:
      return writeDuration(m);
    case W.Wrapper: {
      // reflect's get: an unset `value` reads as the zero value
      const v = m.value;
      return writeScalar(plan.wrapT, false, v === undefined ? scalarZero(plan.wrapT) : v);
    }
    default:
      bad();
  }
  const fields = plan.fields;
  let first = true;
  ensure(1);
  buf[pos++] = 0x7b; // {
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    const v = presentValue(f, m);
    if (v === ABSENT) continue;
    writeBytes(first ? f.keyFirst : f.keyNext);
    first = false;
    if (f.list) writeList(f, v);
    else if (f.map) writeMap(f, v);
    else writeValue(f, f.longAsString, v);
  }
  ensure(1);
  buf[pos++] = 0x7d; // }
}

function writeValue(f: FieldPlan, longAsString: boolean, v: any): void {
  switch (f.kind) {
    case K.Scalar:
    case K.Unwrapped:
      return writeScalar(f.t, longAsString, v);
    case K.Enum:
      return writeEnum(f.en!, v);
    case K.Message:
      return writeMessage(f.sub!, v);
  }
}

function writeList(f: FieldPlan, v: any[]): void {
  ensure(1);
  buf[pos++] = 0x5b; // [
  for (let i = 0; i < v.length; i++) {
    if (i > 0) {
      ensure(1);
      buf[pos++] = 0x2c; // ,
    }
    writeValue(f, f.longAsString, v[i]);
  }
  ensure(1);
  buf[pos++] = 0x5d; // ]
}

function writeMap(f: FieldPlan, v: any): void {
  const keys = Object.keys(v);
  ensure(1);
  buf[pos++] = 0x7b;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (!isCanonicalKey(key, f.keyT)) bad();
    if (i > 0) {
      ensure(1);
      buf[pos++] = 0x2c;
    }
    writeString(key);
    ensure(1);
    buf[pos++] = 0x3a; // :
    writeValue(f, false, v[key]);
  }
  ensure(1);
  buf[pos++] = 0x7d;
}

/**
 * Whether reflect's mapKeyToReflect gives back the same key (so the JSON
 * object has the same keys, in the same order), and the key is not
 * "__proto__", which an object literal's assignment swallows.
 */
function isCanonicalKey(key: string, t: number): boolean {
  if (key === "__proto__") return false;
  switch (t) {
    case S.STRING:
    case S.BOOL: // "true"/"false" round-trip, anything else is kept as it is
      return true;
    case S.INT32:
    case S.FIXED32:
    case S.UINT32:
    case S.SFIXED32:
    case S.SINT32: {
      const n = Number.parseInt(key);
      return !Number.isFinite(n) || String(n) === key;
    }
    default:
      // 64-bit keys: reflect parses them into bigints
      try {
        const n = t === S.UINT64 || t === S.FIXED64 ? protoInt64.uParse(key) : protoInt64.parse(key);
        return String(n) === key;
      } catch {
        return true; // not a number: reflect keeps the key as it is
      }
  }
}

const NULL = Buffer.from("null");

function writeEnum(e: EnumPlan, v: any): void {
  if (typeof v !== "number") bad();
  if (e.isNull) return writeBytes(NULL);
  const name = e.names.get(v);
  if (name !== undefined) writeBytes(name);
  else if (Number.isFinite(v)) writeNumber(v); // an open enum's unknown value: the number
  else bad(); // NaN / Infinity: JSON.stringify's `null`, left to protobuf-es
}

function writeScalar(t: number, longAsString: boolean, v: any): void {
  switch (t) {
    case S.STRING:
      if (typeof v !== "string") bad();
      return writeString(v);
    case S.INT32:
    case S.SFIXED32:
    case S.SINT32:
    case S.FIXED32:
    case S.UINT32:
      // protobuf-es only checks the type: 1.5 is written as 1.5, NaN as null (left to it)
      if (typeof v !== "number" || !Number.isFinite(v)) bad();
      return writeNumber(v);
    case S.BOOL:
      if (typeof v !== "boolean") bad();
      return writeAscii(v ? "true" : "false");
    case S.DOUBLE:
    case S.FLOAT:
      if (typeof v !== "number") bad();
      if (Number.isFinite(v)) writeNumber(v);
      else writeAscii(v !== v ? '"NaN"' : v > 0 ? '"Infinity"' : '"-Infinity"');
      return;
    case S.INT64:
    case S.UINT64:
    case S.FIXED64:
    case S.SFIXED64:
    case S.SINT64:
      if (typeof v === "bigint") {
        writeQuotedAscii(String(v));
      } else if (typeof v === "string") {
        if (longAsString) {
          // reflect's longToReflect parses (and validates) strings of jstype=JS_STRING fields
          writeQuotedAscii(String(t === S.UINT64 || t === S.FIXED64 ? protoInt64.uParse(v) : protoInt64.parse(v)));
        } else {
          writeString(v);
        }
      } else if (typeof v === "number" && Number.isInteger(v)) {
        writeQuotedAscii(String(v));
      } else {
        bad();
      }
      return;
    case S.BYTES:
      if (!(v instanceof Uint8Array)) bad();
      return writeBase64(v);
  }
  bad();
}

function writeQuotedAscii(s: string): void {
  ensure(s.length + 2);
  buf[pos++] = 0x22;
  writeAscii(s);
  buf[pos++] = 0x22;
}

const B64 = Buffer.from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");

/** Standard base64 with padding, quoted (protobuf-es's base64Encode). */
function writeBase64(b: Uint8Array): void {
  const n = b.length;
  ensure(Math.ceil(n / 3) * 4 + 2);
  buf[pos++] = 0x22;
  let i = 0;
  for (; i + 2 < n; i += 3) {
    const x = (b[i]! << 16) | (b[i + 1]! << 8) | b[i + 2]!;
    buf[pos++] = B64[x >> 18]!;
    buf[pos++] = B64[(x >> 12) & 63]!;
    buf[pos++] = B64[(x >> 6) & 63]!;
    buf[pos++] = B64[x & 63]!;
  }
  if (i < n) {
    const x = (b[i]! << 16) | (i + 1 < n ? b[i + 1]! << 8 : 0);
    buf[pos++] = B64[x >> 18]!;
    buf[pos++] = B64[(x >> 12) & 63]!;
    buf[pos++] = i + 1 < n ? B64[(x >> 6) & 63]! : 0x3d;
    buf[pos++] = 0x3d; // =
  }
  buf[pos++] = 0x22;
}

/** reflect's scalarZeroValue (64-bit: 0n). */
function scalarZero(t: number): unknown {
  switch (t) {
    case S.STRING:
      return "";
    case S.BOOL:
      return false;
    case S.BYTES:
      return new Uint8Array(0);
    case S.INT64:
    case S.UINT64:
    case S.FIXED64:
    case S.SFIXED64:
    case S.SINT64:
      return 0n;
    default:
      return 0;
  }
}

// ---- well-known types ---------------------------------------------------------------------

// timestampToJson's range, in ms since the epoch.
const TS_MIN_MS = Date.parse("0001-01-01T00:00:00Z");
const TS_MAX_MS = Date.parse("9999-12-31T23:59:59Z");
const DURATION_MAX_S = 315576000000;

/** A 64-bit field's value as a safe integer number, or bad(). */
function int64Number(v: unknown): number {
  if (typeof v === "bigint") {
    const n = Number(v);
    if (Number.isSafeInteger(n)) return n;
  } else if (typeof v === "number" && Number.isSafeInteger(v)) {
    return v;
  }
  return bad();
}

/** Two decimal digits (0 <= n < 100) at b[p]; returns the position after them. */
function put2(b: Uint8Array, p: number, n: number): number {
  b[p] = 0x30 + ((n / 10) | 0);
  b[p + 1] = 0x30 + (n % 10);
  return p + 2;
}

/** `n` as exactly `digits` decimal digits, zero-padded, at b[p]; returns the position after them. */
function putPadded(b: Uint8Array, p: number, n: number, digits: number): number {
  for (let i = p + digits - 1; i >= p; i--) {
    b[i] = 0x30 + (n % 10);
    n = (n / 10) | 0;
  }
  return p + digits;
}

/** The nine-digit fraction cut to 3, 6 or 9 digits, as protobuf-es does for both types. */
function putFraction(b: Uint8Array, p: number, nanos: number): number {
  b[p++] = 0x2e; // .
  if (nanos % 1000000 === 0) return putPadded(b, p, nanos / 1000000, 3);
  if (nanos % 1000 === 0) return putPadded(b, p, nanos / 1000, 6);
  return putPadded(b, p, nanos, 9);
}

function writeTimestamp(m: any): void {
  const seconds = int64Number(m.seconds);
  const nanos = m.nanos;
  // protobuf-es throws on a negative or too large nanos; a non-integer prints oddly: both left to it
  if (typeof nanos !== "number" || !Number.isInteger(nanos) || nanos < 0 || nanos > 999999999) bad();
  const ms = seconds * 1000;
  if (ms < TS_MIN_MS || ms > TS_MAX_MS) bad();
  // Days since the epoch to a proleptic Gregorian date (H. Hinnant's civil_from_days), as
  // Date.prototype.toISOString prints it for years 1..9999.
  const days = Math.floor(seconds / 86400);
  let rem = seconds - days * 86400;
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const hh = Math.floor(rem / 3600);
  rem -= hh * 3600;
  const mm = Math.floor(rem / 60);
  // "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ"
  ensure(32);
  const b = buf;
  let p = pos;
  b[p++] = 0x22;
  p = putPadded(b, p, year, 4);
  b[p++] = 0x2d; // -
  p = put2(b, p, month);
  b[p++] = 0x2d;
  p = put2(b, p, day);
  b[p++] = 0x54; // T
  p = put2(b, p, hh);
  b[p++] = 0x3a; // :
  p = put2(b, p, mm);
  b[p++] = 0x3a;
  p = put2(b, p, rem - mm * 60);
  if (nanos !== 0) p = putFraction(b, p, nanos);
  b[p++] = 0x5a; // Z
  b[p++] = 0x22;
  pos = p;
}

function writeDuration(m: any): void {
  const seconds = int64Number(m.seconds);
  const nanos = m.nanos;
  if (typeof nanos !== "number" || !Number.isInteger(nanos) || nanos < -999999999 || nanos > 999999999) bad();
  // protobuf-es's errors: out of range, or signs that disagree
  if (seconds > DURATION_MAX_S || seconds < -DURATION_MAX_S) bad();
  if ((seconds > 0 && nanos < 0) || (seconds < 0 && nanos > 0)) bad();
  ensure(32);
  buf[pos++] = 0x22;
  if (nanos < 0 && seconds === 0) buf[pos++] = 0x2d; // "-0.5s": the sign is the nanos'
  writeAscii(String(seconds));
  if (nanos !== 0) pos = putFraction(buf, pos, Math.abs(nanos));
  buf[pos++] = 0x73; // s
  buf[pos++] = 0x22;
}
