// Equivalence of the fast JSON writer with protobuf-es's toJsonString: on random messages of every
// type the project's generated code reaches (gen/ plus the google.protobuf and buf.validate files
// they import), on a hand-built schema for what gen/ lacks (proto2 groups and required fields,
// jstype=JS_STRING, wrappers everywhere, maps of every key type, NullValue, json_name, Struct,
// Any, ...), and on one explicit case per mapping rule.
import { beforeEach, describe, expect, it, vi } from "vitest";
import * as protobuf from "@bufbuild/protobuf";
import { protoCamelCase } from "@bufbuild/protobuf/reflect";
import { create, createFileRegistry, type DescFile, type DescMessage, type Message } from "@bufbuild/protobuf";
import {
  FileDescriptorProtoSchema,
  file_google_protobuf_any,
  file_google_protobuf_duration,
  file_google_protobuf_field_mask,
  file_google_protobuf_struct,
  file_google_protobuf_timestamp,
  file_google_protobuf_wrappers,
  timestampFromMs,
  FieldDescriptorProto_Label as L,
  FieldDescriptorProto_Type as T,
} from "@bufbuild/protobuf/wkt";
import { GetEventResponseSchema } from "../../../gen/myevents/v1/event_service_pb.js";
import { EventSchema, EventState } from "../../../gen/myevents/v1/event_pb.js";
import { encodeJson, encodeJsonBytes, isJsonFastPathType, jsonEncoderStats } from "./json-encoder.js";
import { messageGenerator, projectMessages, seededRandom } from "./test-support.js";

// toJsonString, counted: the fast path must not call it, a fallback must.
vi.mock("@bufbuild/protobuf", async (importOriginal) => {
  const orig = await importOriginal<typeof import("@bufbuild/protobuf")>();
  return { ...orig, toJsonString: vi.fn(orig.toJsonString) };
});
const toJsonStringMock = vi.mocked(protobuf.toJsonString);
const actual = await vi.importActual<typeof import("@bufbuild/protobuf")>("@bufbuild/protobuf");
/** protobuf-es's answer (not through the counted mock). */
function reference(desc: DescMessage, msg: Message): string {
  return actual.toJsonString(desc, msg);
}

// ---- random messages, with the values JSON writing is sensitive to --------------------------

/** Types the fast path leaves to protobuf-es when present. */
const FALLBACK_TYPES = new Set(["google.protobuf.Any", "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue", "google.protobuf.FieldMask"]);

/** Set when the message being built holds a value the fast path hands to protobuf-es. */
let holdsFallback = false;

const random = seededRandom();
const { rnd, int, pick } = random;

function randomTimestamp(): Message {
  const r = rnd();
  // mostly in range (0001-01-01 .. 9999-12-31T23:59:59), with ms, µs and ns fractions
  let seconds = r < 0.05 ? pick([-62135596800n, 253402300799n, 0n, -1n, 951782400n, 4107542400n]) : BigInt(Math.floor(-62135596800 + rnd() * (253402300799 + 62135596800)));
  let nanos = pick([0, int(1000) * 1_000_000, int(1_000_000) * 1000, int(1_000_000_000), 999_999_999, 1]);
  if (rnd() < 0.04) {
    holdsFallback = true; // invalid: protobuf-es throws
    if (rnd() < 0.5) seconds = pick([-62135596801n, 253402300800n, 2n ** 62n]);
    else nanos = pick([-1, 1_000_000_000]);
  }
  return create(file_google_protobuf_timestamp.messages[0]!, { seconds, nanos });
}

function randomDuration(): Message {
  const sign = rnd() < 0.5 ? -1 : 1;
  let seconds = BigInt(sign * (rnd() < 0.3 ? int(3) : int(315576000001)));
  let nanos = sign * pick([0, int(1000) * 1_000_000, int(1_000_000) * 1000, int(1_000_000_000), 999_999_999]);
  if (seconds === 0n && rnd() < 0.5) nanos = -nanos;
  if (rnd() < 0.04) {
    holdsFallback = true;
    if (rnd() < 0.5) seconds = pick([315576000001n, -315576000001n]);
    else nanos = -Math.sign(Number(seconds) || 1) * 5;
  }
  return create(file_google_protobuf_duration.messages[0]!, { seconds, nanos });
}

const gen = messageGenerator(random, {
  chars: [
    ..."abcXYZ09 _-/.:",
    '"', "\\", "\n", "\t", "\b", "\f", "\r", "\u0000", "\u0001", "\u001f", "\u007f", "/", "<", ">", "&", "'", // escapes (or not)
    "é", "ß", "Ω", "€", "日", "\u2028", "\u2029", "\ufeff", "\uffff",
    "😀", "𝄞", // surrogate pairs
    "\ud800", "\udc00", "\udbff", // lone surrogates (JSON.stringify escapes them)
  ],
  asciiLength: 80, // printable ASCII around the 64-char threshold
  values: {
    i32: [0, 1, -1, 127, 128, 300, -2147483648, 2147483647],
    u32: [0, 1, 127, 128, 2147483648, 4294967295],
    i64: [0n, 1n, -1n, 2n ** 31n, 2n ** 32n, 2n ** 53n, -(2n ** 53n), 2n ** 63n - 1n, -(2n ** 63n), 1700000000n],
    u64: [0n, 1n, 2n ** 32n - 1n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n],
    f64: [0, -0, 1, -1, 1.5, 0.1 + 0.2, NaN, Infinity, -Infinity, 1e21, 1e-7, 2 ** 53, Number.MAX_VALUE, Number.MIN_VALUE, -1e-300],
    f32: [0, -0, 1, -1, 1.5, NaN, Infinity, -Infinity, 3.4028234663852886e38, 1e-40, Math.fround(0.1)],
  },
  bytesLength: 40,
  mapSize: 5,
  // integer-like keys come first in a JS object, whatever the insertion order
  stringKeys: ["10", "2", "0", "-1", "01", "4294967295", "4294967294", "a", ""],
  fallbackTypes: FALLBACK_TYPES,
  onFallback: () => {
    holdsFallback = true;
  },
  instead: (desc) => {
    switch (desc.typeName) {
      case "google.protobuf.Timestamp":
        return randomTimestamp();
      case "google.protobuf.Duration":
        return randomDuration();
      case "google.protobuf.Any": {
        const m = create(desc) as Record<string, unknown>;
        if (rnd() < 0.5) m.typeUrl = ""; // {} in JSON; anything else throws without a registry
        return m as unknown as Message;
      }
    }
    return undefined;
  },
});

/** Same string as toJsonString, or the same error; returns whether toJsonString threw. */
function assertSame(desc: DescMessage, msg: Message): boolean {
  let want: string | undefined;
  let err: string | undefined;
  try {
    want = reference(desc, msg);
  } catch (e) {
    err = (e as Error).message;
  }
  if (err !== undefined) {
    expect(() => encodeJson(desc, msg), desc.typeName).toThrow(err);
    expect(() => encodeJsonBytes(desc, msg), desc.typeName).toThrow(err);
    return true;
  }
  const got = encodeJson(desc, msg);
  if (got !== want) expect.fail(`${desc.typeName}:\n fast   ${got}\n toJson ${want}`);
  const bytes = encodeJsonBytes(desc, msg);
  if (!bytes.equals(Buffer.from(want!))) expect.fail(`${desc.typeName}: bytes ${bytes.toString("hex")} != ${Buffer.from(want!).toString("hex")}`);
  return false;
}

const SAMPLES = 150;

describe("encodeJson matches toJsonString", async () => {
  const messages = await projectMessages();

  it("covers the project's types, their imports and the well-known types", () => {
    const names = new Set(messages.map((m) => m.typeName));
    for (const n of ["myevents.v1.GetEventResponse", "myevents.v1.Event", "google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask", "buf.validate.FieldRules", "google.protobuf.FileDescriptorProto"]) {
      expect(names, n).toContain(n);
    }
    expect(messages.length).toBeGreaterThan(50);
  });

  it("every project type but FieldMask (Any, Struct, Value, ListValue are not reached) takes the fast path", () => {
    const slow = messages.filter((m) => !isJsonFastPathType(m)).map((m) => m.typeName);
    expect(slow).toEqual(["google.protobuf.FieldMask"]);
  });

  it(`${SAMPLES} random messages of every type give the same string (or error)`, () => {
    random.reseed(12345);
    let n = 0;
    let fastOnly = 0;
    for (const desc of messages) {
      assertSame(desc, create(desc)); // the empty message (required fields: both throw)
      for (let i = 0; i < SAMPLES; i++) {
        holdsFallback = false;
        const m = gen.message(desc, 40);
        const fallbacks = jsonEncoderStats.fallbacks;
        const threw = assertSame(desc, m);
        n++;
        if (!holdsFallback && isJsonFastPathType(desc)) {
          // valid input without Any/Struct/... never needs the toJsonString rescue
          expect(threw, `${desc.typeName} threw`).toBe(false);
          expect(jsonEncoderStats.fallbacks - fallbacks, `${desc.typeName}: ${String(jsonEncoderStats.lastError)}`).toBe(0);
          fastOnly++;
        }
      }
    }
    expect(n).toBe(messages.length * SAMPLES);
    expect(fastOnly).toBeGreaterThan(n / 2);
    console.log(`${messages.length} message types, ${n} random messages, ${fastOnly} on the fast path alone`);
  });
});

// ---- the fast path is the one used ---------------------------------------------------------

const start = Date.parse("2026-06-01T19:30:00.123Z");
const getEventResponse = create(GetEventResponseSchema, {
  event: create(EventSchema, {
    id: "evt_01J9Z8",
    name: "Spring Concert at the Old Hall",
    locationId: "loc_7",
    hall: "Main",
    startTime: timestampFromMs(start),
    endTime: timestampFromMs(start + 2.5 * 3600_000),
    capacity: 500,
    seatsAvailable: 0,
    state: EventState.SCHEDULED,
  }),
});

describe("fast path or fallback", () => {
  beforeEach(() => {
    toJsonStringMock.mockClear();
  });

  it("GetEvent's response is written without toJsonString", () => {
    const fallbacks = jsonEncoderStats.fallbacks;
    const got = encodeJson(GetEventResponseSchema, getEventResponse);
    const bytes = encodeJsonBytes(GetEventResponseSchema, getEventResponse);
    expect(toJsonStringMock).not.toHaveBeenCalled();
    expect(bytes.toString()).toBe(got);
    expect(jsonEncoderStats.fallbacks).toBe(fallbacks);
    expect(got).toBe(
      '{"event":{"id":"evt_01J9Z8","name":"Spring Concert at the Old Hall","locationId":"loc_7","hall":"Main",' +
        '"startTime":"2026-06-01T19:30:00.123Z","endTime":"2026-06-01T22:00:00.123Z","capacity":500,"state":"EVENT_STATE_SCHEDULED"}}',
    );
    expect(got).toBe(reference(GetEventResponseSchema, getEventResponse));
  });

  it("an invalid value is handed to toJsonString, which throws its own error", () => {
    const bad = create(EventSchema, { name: 5 as unknown as string });
    const fallbacks = jsonEncoderStats.fallbacks;
    expect(() => encodeJson(EventSchema, bad)).toThrow(/cannot encode field myevents.v1.Event.name to JSON/);
    expect(() => encodeJsonBytes(EventSchema, bad)).toThrow(/cannot encode field myevents.v1.Event.name to JSON/);
    expect(toJsonStringMock).toHaveBeenCalledTimes(2);
    expect(jsonEncoderStats.fallbacks).toBe(fallbacks + 2);
  });

  it("a message of another type is handed to toJsonString", () => {
    const ts = create(file_google_protobuf_timestamp.messages[0]!, { seconds: 1n });
    expect(() => encodeJson(EventSchema, ts)).toThrow(/cannot use field myevents.v1.Event.id with message google.protobuf.Timestamp/);
    expect(toJsonStringMock).toHaveBeenCalledTimes(1);
  });
});

// ---- a hand-built schema for what gen/ does not have ---------------------------------------

function testRegistry() {
  const p2 = create(FileDescriptorProtoSchema, {
    name: "json/test2.proto",
    package: "json.test",
    syntax: "proto2",
    messageType: [
      {
        name: "P2",
        field: [
          { name: "req", number: 1, label: L.REQUIRED, type: T.INT32 },
          { name: "s", number: 2, label: L.OPTIONAL, type: T.STRING, defaultValue: "hi" },
          { name: "i64s", number: 3, label: L.OPTIONAL, type: T.INT64, options: { jstype: 1 /* JS_STRING */ } },
          { name: "u64s", number: 4, label: L.REPEATED, type: T.UINT64, options: { jstype: 1 } },
          { name: "grp", number: 6, label: L.OPTIONAL, type: T.GROUP, typeName: ".json.test.P2.Grp" },
          { name: "child", number: 11, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".json.test.P2" },
          { name: "e", number: 15, label: L.OPTIONAL, type: T.ENUM, typeName: ".json.test.E", defaultValue: "E_TWO" },
          { name: "es", number: 16, label: L.REPEATED, type: T.ENUM, typeName: ".json.test.E" },
          { name: "by", number: 19, label: L.OPTIONAL, type: T.BYTES },
          { name: "d", number: 20, label: L.OPTIONAL, type: T.DOUBLE, defaultValue: "1.5" },
          { name: "os", number: 22, label: L.OPTIONAL, type: T.STRING, oneofIndex: 0 },
          { name: "om", number: 23, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".json.test.P2", oneofIndex: 0 },
          // declared out of number order: output is in number order
          { name: "early_bird", number: 0x1fffffff, label: L.OPTIONAL, type: T.BOOL },
          { name: "late", number: 8, label: L.OPTIONAL, type: T.SINT32, jsonName: "renamed" },
        ],
        oneofDecl: [{ name: "o" }],
        extensionRange: [{ start: 100, end: 200 }],
        nestedType: [{ name: "Grp", field: [{ name: "a", number: 7, label: L.OPTIONAL, type: T.INT32 }] }],
      },
    ],
    enumType: [{ name: "E", value: [{ name: "E_ONE", number: 1 }, { name: "E_TWO", number: 2 }] }],
  });
  const mapEntry = (name: string, key: T, value: T, typeName?: string) => ({
    name,
    options: { mapEntry: true },
    field: [
      { name: "key", number: 1, label: L.OPTIONAL, type: key },
      { name: "value", number: 2, label: L.OPTIONAL, type: value, typeName },
    ],
  });
  const p3 = create(FileDescriptorProtoSchema, {
    name: "json/test3.proto",
    package: "json.test3",
    syntax: "proto3",
    dependency: ["google/protobuf/wrappers.proto", "google/protobuf/struct.proto", "google/protobuf/any.proto", "google/protobuf/field_mask.proto", "google/protobuf/duration.proto", "google/protobuf/timestamp.proto"],
    messageType: [
      {
        name: "W3",
        field: [
          { name: "sv", number: 1, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".google.protobuf.StringValue" },
          { name: "iv", number: 2, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".google.protobuf.Int64Value" },
          { name: "bv", number: 3, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".google.protobuf.BoolValue" },
          { name: "dv", number: 4, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".google.protobuf.DoubleValue" },
          { name: "byv", number: 5, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".google.protobuf.BytesValue" },
          { name: "u64v", number: 6, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".google.protobuf.UInt64Value" },
          { name: "wl", number: 7, label: L.REPEATED, type: T.MESSAGE, typeName: ".google.protobuf.Int32Value" },
          { name: "ow", number: 8, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".google.protobuf.FloatValue", oneofIndex: 0 },
          { name: "opt", number: 9, label: L.OPTIONAL, type: T.INT32, proto3Optional: true, oneofIndex: 1 },
          { name: "ostr", number: 10, label: L.OPTIONAL, type: T.STRING, proto3Optional: true, oneofIndex: 2 },
          { name: "js", number: 11, label: L.OPTIONAL, type: T.UINT64, options: { jstype: 1 } },
          { name: "f", number: 12, label: L.OPTIONAL, type: T.FLOAT },
          { name: "null", number: 13, label: L.OPTIONAL, type: T.ENUM, typeName: ".google.protobuf.NullValue" },
          { name: "dur", number: 14, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".google.protobuf.Duration" },
          { name: "ts_list", number: 15, label: L.REPEATED, type: T.MESSAGE, typeName: ".google.protobuf.Timestamp" },
          { name: "m_i32", number: 16, label: L.REPEATED, type: T.MESSAGE, typeName: ".json.test3.W3.MI32Entry" },
          { name: "m_str", number: 17, label: L.REPEATED, type: T.MESSAGE, typeName: ".json.test3.W3.MStrEntry" },
          { name: "m_bool", number: 18, label: L.REPEATED, type: T.MESSAGE, typeName: ".json.test3.W3.MBoolEntry" },
          { name: "m_i64", number: 19, label: L.REPEATED, type: T.MESSAGE, typeName: ".json.test3.W3.MI64Entry" },
          { name: "m_u64", number: 20, label: L.REPEATED, type: T.MESSAGE, typeName: ".json.test3.W3.MU64Entry" },
          { name: "m_wrap", number: 21, label: L.REPEATED, type: T.MESSAGE, typeName: ".json.test3.W3.MWrapEntry" },
          { name: "m_enum", number: 22, label: L.REPEATED, type: T.MESSAGE, typeName: ".json.test3.W3.MEnumEntry" },
          { name: "m_bytes", number: 23, label: L.REPEATED, type: T.MESSAGE, typeName: ".json.test3.W3.MBytesEntry" },
          { name: "child", number: 24, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".json.test3.W3" },
          { name: "i64_list", number: 25, label: L.REPEATED, type: T.SINT64 },
          { name: "odur", number: 26, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".google.protobuf.Duration", oneofIndex: 0 },
          { name: "alias", number: 27, label: L.OPTIONAL, type: T.ENUM, typeName: ".json.test3.Aliased" },
        ],
        oneofDecl: [{ name: "w" }, { name: "_opt" }, { name: "_ostr" }],
        nestedType: [
          mapEntry("MI32Entry", T.SINT32, T.STRING),
          mapEntry("MStrEntry", T.STRING, T.DOUBLE),
          mapEntry("MBoolEntry", T.BOOL, T.INT64),
          mapEntry("MI64Entry", T.INT64, T.MESSAGE, ".json.test3.W3"),
          mapEntry("MU64Entry", T.FIXED64, T.UINT32),
          mapEntry("MWrapEntry", T.STRING, T.MESSAGE, ".google.protobuf.StringValue"),
          mapEntry("MEnumEntry", T.UINT32, T.ENUM, ".json.test3.Aliased"),
          mapEntry("MBytesEntry", T.INT32, T.BYTES),
        ],
      },
      {
        // fields the fast path does not write: a message holding one falls back for that call
        name: "S3",
        field: [
          { name: "name", number: 1, label: L.OPTIONAL, type: T.STRING },
          { name: "st", number: 2, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".google.protobuf.Struct" },
          { name: "val", number: 3, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".google.protobuf.Value" },
          { name: "lst", number: 4, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".google.protobuf.ListValue" },
          { name: "any", number: 5, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".google.protobuf.Any" },
          { name: "mask", number: 6, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".google.protobuf.FieldMask" },
        ],
      },
      {
        // json_name values a JS object would reorder: the type falls back as a whole
        name: "Reordered",
        field: [
          { name: "a", number: 1, label: L.OPTIONAL, type: T.STRING },
          { name: "b", number: 2, label: L.OPTIONAL, type: T.STRING, jsonName: "7" },
        ],
      },
    ],
    enumType: [
      {
        name: "Aliased",
        options: { allowAlias: true },
        value: [
          { name: "A_ZERO", number: 0 },
          { name: "A_ONE", number: 1 },
          { name: "A_UNO", number: 1 },
          { name: "A_NEG", number: -3 },
        ],
      },
    ],
  });
  const deps = new Map<string, DescFile>([
    ["google/protobuf/wrappers.proto", file_google_protobuf_wrappers],
    ["google/protobuf/struct.proto", file_google_protobuf_struct],
    ["google/protobuf/any.proto", file_google_protobuf_any],
    ["google/protobuf/field_mask.proto", file_google_protobuf_field_mask],
    ["google/protobuf/duration.proto", file_google_protobuf_duration],
    ["google/protobuf/timestamp.proto", file_google_protobuf_timestamp],
  ]);
  // protoc fills json_name; descriptors built by hand must too
  for (const file of [p2, p3]) {
    const fill = (m: { field: { name: string; jsonName: string }[]; nestedType: unknown[] }) => {
      for (const f of m.field) if (f.jsonName === "") f.jsonName = protoCamelCase(f.name);
      for (const n of m.nestedType) fill(n as typeof m);
    };
    for (const m of file.messageType) fill(m);
  }
  const r2 = createFileRegistry(p2, () => undefined);
  const r3 = createFileRegistry(p3, (n) => deps.get(n));
  return {
    P2: r2.getMessage("json.test.P2")!,
    W3: r3.getMessage("json.test3.W3")!,
    S3: r3.getMessage("json.test3.S3")!,
    Reordered: r3.getMessage("json.test3.Reordered")!,
    wrapper: (name: string) => r3.getMessage(`google.protobuf.${name}`)!,
  };
}

describe("hand-built proto2/proto3 schema", () => {
  const { P2, W3, S3, Reordered, wrapper } = testRegistry();
  const json = (desc: DescMessage, init: Record<string, unknown>) => {
    const m = create(desc, init as never);
    const want = reference(desc, m);
    expect(encodeJson(desc, m)).toBe(want);
    expect(encodeJsonBytes(desc, m).toString("hex")).toBe(Buffer.from(want).toString("hex"));
    return want;
  };

  it("random proto2 (groups, required, defaults, jstype) and proto3 (wrappers, maps, WKTs) messages match", () => {
    random.reseed(777);
    const before = jsonEncoderStats.fallbacks;
    expect(isJsonFastPathType(P2)).toBe(true);
    expect(isJsonFastPathType(W3)).toBe(true);
    let fast = 0;
    for (let i = 0; i < 3000; i++) {
      const m = gen.message(P2, 30);
      let fallbacks = jsonEncoderStats.fallbacks;
      assertSame(P2, m);
      expect(jsonEncoderStats.fallbacks - fallbacks, String(jsonEncoderStats.lastError)).toBe(0);
      holdsFallback = false;
      const w = gen.message(W3, 30);
      fallbacks = jsonEncoderStats.fallbacks;
      assertSame(W3, w);
      if (!holdsFallback) {
        // only invalid Timestamps / Durations (protobuf-es throws) are left to it
        expect(jsonEncoderStats.fallbacks - fallbacks, String(jsonEncoderStats.lastError)).toBe(0);
        fast++;
      }
    }
    expect(fast).toBeGreaterThan(2000);
    expect(jsonEncoderStats.fallbacks - before).toBeLessThan(2000); // string and bytes: 2 per message
  });

  it("scalars: int32 as numbers, 64-bit as strings, bool, strings escaped as JSON.stringify does", () => {
    expect(json(W3, { opt: 0, ostr: "" })).toBe('{"opt":0,"ostr":""}'); // explicit presence: zero written
    expect(json(W3, { js: "007", i64List: [0n, -5n, 2n ** 63n - 1n] })).toBe('{"js":"7","i64List":["0","-5","9223372036854775807"]}');
    expect(json(P2, { req: -7, late: 3, earlyBird: false })).toBe('{"req":-7,"renamed":3,"earlyBird":false}');
    expect(json(P2, { req: 1, s: 'a"b\\c\n\u0000\u001f\u007f\u2028\ud800😀/' })).toBe(`{"req":1,"s":${JSON.stringify('a"b\\c\n\u0000\u001f\u007f\u2028\ud800😀/')}}`);
    expect(json(P2, { req: 1, s: "x".repeat(100) + "\t" })).toBe(`{"req":1,"s":"${"x".repeat(100)}\\t"}`);
  });

  it("floats: numbers as JSON.stringify prints them, NaN and infinities as strings, -0 written under implicit presence", () => {
    expect(json(W3, { f: NaN })).toBe('{"f":"NaN"}');
    expect(json(W3, { f: Infinity })).toBe('{"f":"Infinity"}');
    expect(json(W3, { f: -Infinity })).toBe('{"f":"-Infinity"}');
    expect(json(W3, { f: -0 })).toBe('{"f":0}');
    expect(json(W3, { f: 0 })).toBe("{}");
    expect(json(W3, { f: 1e21 })).toBe('{"f":1e+21}');
    expect(json(W3, { f: 1.5e-7 })).toBe('{"f":1.5e-7}');
  });

  it("bytes: standard base64 with padding", () => {
    expect(json(P2, { req: 1, by: new Uint8Array([0xfb, 0xff]) })).toBe('{"req":1,"by":"+/8="}');
    expect(json(P2, { req: 1, by: new Uint8Array(0) })).toBe('{"req":1,"by":""}');
    const sub = new Uint8Array([9, 1, 2, 3, 9]).subarray(1, 4);
    expect(json(W3, { mBytes: { 3: sub } })).toBe('{"mBytes":{"3":"AQID"}}');
  });

  it("enums: names, the number for unknown values, the last alias, NullValue as null", () => {
    expect(json(P2, { req: 1, e: 1, es: [2, 1, 7] })).toBe('{"req":1,"e":"E_ONE","es":["E_TWO","E_ONE",7]}');
    expect(json(W3, { alias: 1 })).toBe('{"alias":"A_UNO"}');
    expect(json(W3, { alias: -3, mEnum: { 4: 0, 5: 9 } })).toBe('{"mEnum":{"4":"A_ZERO","5":9},"alias":"A_NEG"}');
    expect(json(W3, { null: 0 })).toBe("{}");
  });

  it("maps: keys as JSON object keys, in a JS object's order (integer keys first)", () => {
    expect(json(W3, { mStr: { b: 1, "10": 2, a: 3, "2": 4, "-1": 5 } })).toBe('{"mStr":{"2":4,"10":2,"b":1,"a":3,"-1":5}}');
    expect(json(W3, { mBool: { true: 5n, false: -1n } })).toBe('{"mBool":{"true":"5","false":"-1"}}');
    expect(json(W3, { mI64: { "-9223372036854775808": { opt: 1 } } })).toBe('{"mI64":{"-9223372036854775808":{"opt":1}}}');
    expect(json(W3, { mU64: { "18446744073709551615": 1 } })).toBe('{"mU64":{"18446744073709551615":1}}');
    expect(json(W3, { mI32: { "-2": "x\"" } })).toBe('{"mI32":{"-2":"x\\""}}');
    expect(json(W3, { mWrap: { k: { value: "" } } })).toBe('{"mWrap":{"k":""}}');
  });

  it("map keys reflect rewrites, or that an object swallows, are left to toJsonString", () => {
    const before = jsonEncoderStats.fallbacks;
    expect(json(W3, { mI32: { "01": "a" } })).toBe('{"mI32":{"1":"a"}}');
    expect(json(W3, { mI64: { "0x10": {} } })).toBe('{"mI64":{"16":{}}}');
    const proto = create(W3);
    Object.defineProperty((proto as unknown as { mStr: object }).mStr, "__proto__", { value: 1, enumerable: true });
    expect(encodeJson(W3, proto)).toBe(reference(W3, proto));
    expect(jsonEncoderStats.fallbacks - before).toBe(5); // json() asks for the string and the bytes
  });

  it("oneofs, optional fields, nested and recursive messages, groups", () => {
    expect(json(P2, { req: 1, o: { case: "om", value: create(P2, { req: 2 }) }, grp: { a: 0 } })).toBe('{"req":1,"grp":{"a":0},"om":{"req":2}}');
    expect(json(P2, { req: 1, o: { case: "os", value: "" } })).toBe('{"req":1,"os":""}');
    expect(json(P2, { req: 1, child: create(P2, { req: 3, child: create(P2, { req: 4 }) }) })).toBe('{"req":1,"child":{"req":3,"child":{"req":4}}}');
    expect(json(W3, { child: create(W3) })).toBe('{"child":{}}');
  });

  it("wrappers: the primitive, in singular fields, lists, oneofs, maps and at the top", () => {
    expect(json(W3, { sv: "", iv: 0n, bv: false, dv: NaN, byv: new Uint8Array([1]), u64v: 2n ** 64n - 1n })).toBe(
      '{"sv":"","iv":"0","bv":false,"dv":"NaN","byv":"AQ==","u64v":"18446744073709551615"}',
    );
    expect(json(W3, { wl: [{ value: 3 }, {}], w: { case: "ow", value: { value: 1.5 } } })).toBe('{"wl":[3,0],"ow":1.5}');
    const i64 = wrapper("Int64Value");
    expect(encodeJson(i64, create(i64, { value: -1n }))).toBe('"-1"');
    expect(encodeJson(wrapper("StringValue"), create(wrapper("StringValue")))).toBe('""');
  });

  it("Timestamp: RFC 3339 in UTC with 0, 3, 6 or 9 fraction digits, years 1 to 9999", () => {
    const ts = file_google_protobuf_timestamp.messages[0]!;
    const cases: [bigint, number, string][] = [
      [0n, 0, "1970-01-01T00:00:00Z"],
      [-1n, 999_999_999, "1969-12-31T23:59:59.999999999Z"],
      [951782400n, 1_000_000, "2000-02-29T00:00:00.001Z"],
      [4107542400n, 1000, "2100-03-01T00:00:00.000001Z"],
      [-62135596800n, 0, "0001-01-01T00:00:00Z"],
      [253402300799n, 999_999_999, "9999-12-31T23:59:59.999999999Z"],
      [-2208988800n, 120_000_000, "1900-01-01T00:00:00.120Z"],
    ];
    for (const [seconds, nanos, text] of cases) {
      const m = create(ts, { seconds, nanos });
      expect(encodeJson(ts, m)).toBe(`"${text}"`);
      expect(reference(ts, m)).toBe(`"${text}"`);
    }
    expect(json(W3, { tsList: [create(ts, { seconds: 1n })] })).toBe('{"tsList":["1970-01-01T00:00:01Z"]}');
    // the date arithmetic against Date's: a day every ~97 over 9999 years, the days around
    // 1 March and 1 January of century and leap years, and random instants
    const seconds: number[] = [];
    for (let s = -62135596800; s <= 253402300799; s += 86400 * 97 + 3607) seconds.push(s);
    for (const year of [1, 4, 100, 400, 1600, 1700, 1900, 1969, 1970, 1972, 2000, 2024, 2100, 2400, 9996, 9999]) {
      for (const [month, day] of [[1, 1], [2, 28], [3, 1], [12, 31]] as const) {
        const d = new Date(0);
        d.setUTCFullYear(year, month - 1, day);
        for (const delta of [-86400, -1, 0, 1, 86400]) seconds.push(Math.floor(d.getTime() / 1000) + delta);
      }
    }
    random.reseed(99);
    for (let i = 0; i < 20000; i++) seconds.push(Math.floor(-62135596800 + rnd() * (253402300799 + 62135596800)));
    for (const s of seconds) assertSame(ts, create(ts, { seconds: BigInt(s) })); // 0001-01-01 minus a second throws
  });

  it("Timestamp and Duration out of range: protobuf-es's errors", () => {
    const ts = file_google_protobuf_timestamp.messages[0]!;
    const du = file_google_protobuf_duration.messages[0]!;
    for (const m of [create(ts, { seconds: 253402300800n }), create(ts, { seconds: -62135596801n }), create(ts, { nanos: -1 }), create(ts, { nanos: 1e9 })]) {
      const err = (() => {
        try {
          reference(ts, m);
        } catch (e) {
          return (e as Error).message;
        }
      })();
      expect(err).toMatch(/cannot encode message google.protobuf.Timestamp to JSON/);
      expect(() => encodeJson(ts, m)).toThrow(err);
    }
    for (const m of [create(du, { seconds: 315576000001n }), create(du, { seconds: 1n, nanos: -1 })]) {
      expect(() => reference(du, m)).toThrow(/google.protobuf.Duration/);
      expect(() => encodeJson(du, m)).toThrow(/google.protobuf.Duration/);
    }
  });

  it("Duration: seconds with 0, 3, 6 or 9 fraction digits and the sign", () => {
    const du = file_google_protobuf_duration.messages[0]!;
    const cases: [bigint, number, string][] = [
      [0n, 0, "0s"],
      [1n, 500_000_000, "1.500s"],
      [-1n, -500_000, "-1.000500s"],
      [0n, -1, "-0.000000001s"],
      [315576000000n, 999_999_999, "315576000000.999999999s"],
      [-315576000000n, 0, "-315576000000s"],
    ];
    for (const [seconds, nanos, text] of cases) {
      const m = create(du, { seconds, nanos });
      expect(encodeJson(du, m)).toBe(`"${text}"`);
      expect(reference(du, m)).toBe(`"${text}"`);
    }
    expect(json(W3, { w: { case: "odur", value: create(du, { seconds: 2n }) }, dur: create(du) })).toBe('{"dur":"0s","odur":"2s"}');
  });

  it("an unset required field throws as toJsonString does", () => {
    const m = create(P2);
    expect(() => reference(P2, m)).toThrow(/required field not set/);
    expect(() => encodeJson(P2, m)).toThrow(/required field not set/);
  });

  it("Struct, Value, ListValue, Any and FieldMask: that call falls back; unset, the fast path still runs", () => {
    expect(isJsonFastPathType(S3)).toBe(true);
    let before = jsonEncoderStats.fallbacks;
    expect(json(S3, { name: "n" })).toBe('{"name":"n"}');
    expect(jsonEncoderStats.fallbacks).toBe(before);
    expect(json(S3, { st: { a: 1, b: [true, "x"], c: { d: null } } })).toBe('{"st":{"a":1,"b":[true,"x"],"c":{"d":null}}}');
    expect(json(S3, { val: { kind: { case: "numberValue", value: 2 } } })).toBe('{"val":2}');
    expect(json(S3, { lst: { values: [{ kind: { case: "boolValue", value: true } }] } })).toBe('{"lst":[true]}');
    expect(json(S3, { any: {} })).toBe('{"any":{}}');
    expect(json(S3, { mask: { paths: ["a_b", "c"] } })).toBe('{"mask":"aB,c"}');
    expect(jsonEncoderStats.fallbacks - before).toBe(10); // json() asks for the string and the bytes
    before = jsonEncoderStats.fallbacks;
    const anyType = create(S3, { any: { typeUrl: "type.googleapis.com/x.Y" } });
    expect(() => reference(S3, anyType)).toThrow(/is not in the type registry/);
    expect(() => encodeJson(S3, anyType)).toThrow(/is not in the type registry/);
    expect(jsonEncoderStats.fallbacks - before).toBe(1);
  });

  it("json_name an object would reorder: the type falls back as a whole", () => {
    expect(isJsonFastPathType(Reordered)).toBe(false);
    expect(json(Reordered, { a: "x", b: "y" })).toBe('{"7":"y","a":"x"}');
  });

  it("values protobuf-es writes oddly or refuses are left to it", () => {
    const before = jsonEncoderStats.fallbacks;
    expect(json(W3, { opt: NaN })).toBe('{"opt":null}');
    expect(json(W3, { alias: NaN })).toBe('{"alias":null}');
    expect(json(W3, { opt: 1.5 })).toBe('{"opt":1.5}'); // not refused: the fast path writes it too
    expect(json(W3, { f: -0.5, opt: -2147483648, alias: 2147483647 })).toBe('{"opt":-2147483648,"f":-0.5,"alias":2147483647}');
    expect(jsonEncoderStats.fallbacks - before).toBe(4); // json() asks for the string and the bytes
    for (const init of [{ js: "x" }, { i64List: [1.5] }, { sv: 3 }, { wl: [undefined] }, { child: { $typeName: "other" } }, { mStr: { a: "1" } }]) {
      const m = create(W3);
      Object.assign(m, init);
      assertSame(W3, m);
    }
  });
});
