// Equivalence of the fast encoder with protobuf-es's toBinary, on random messages of every type
// the project's generated code reaches (gen/ plus the google.protobuf and buf.validate files they
// import), and on a hand-built proto2/proto3 schema for what gen/ lacks (groups, required,
// unpacked repeated, jstype=JS_STRING, wrappers, Struct fallback).
import { readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import {
  create,
  createFileRegistry,
  toBinary,
  ScalarType,
  type DescField,
  type DescFile,
  type DescMessage,
  type Message,
} from "@bufbuild/protobuf";
import {
  FileDescriptorProtoSchema,
  file_google_protobuf_struct,
  file_google_protobuf_wrappers,
  FieldDescriptorProto_Label as L,
  FieldDescriptorProto_Type as T,
} from "@bufbuild/protobuf/wkt";
import { WireType } from "@bufbuild/protobuf/wire";
import { encodeEnvelope } from "../grpc-wire.js";
import { encodeBinary, encodeBinaryEnveloped, encoderStats, isFastPathType } from "./binary-encoder.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const genDir = path.resolve(here, "../../../gen");

// ---- seeded PRNG and random values --------------------------------------------------------

let seed = 0x9e3779b9;
function rnd(): number {
  // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n: number) => Math.floor(rnd() * n);
const pick = <T>(a: readonly T[]): T => a[int(a.length)]!;

const CHARS = [
  ..."abcXYZ09 _-/.:",
  "é", "ß", "ü", "Ω", "ж", // 2 bytes
  "€", "日", "本", "語", "\u0800", "\uffff", // 3 bytes
  "😀", "🎉", "𝄞", // surrogate pairs, 4 bytes
  "\ud800", "\udc00", "\udbff", // lone surrogates (TextEncoder writes U+FFFD)
];
function randomString(): string {
  switch (int(6)) {
    case 0:
      return "";
    case 1:
      return "x".repeat(int(200)); // long ASCII (native path)
    case 2: {
      // ASCII of any length around the short-string thresholds
      let s = "";
      for (let i = int(70); i > 0; i--) s += String.fromCharCode(32 + int(95));
      return s;
    }
    default: {
      let s = "";
      for (let i = int(90); i > 0; i--) s += pick(CHARS);
      return s;
    }
  }
}

const I32 = [0, 1, -1, 127, 128, 300, 16384, -2147483648, 2147483647, -300];
const U32 = [0, 1, 127, 128, 16383, 16384, 2147483648, 4294967295];
const I64 = [0n, 1n, -1n, 127n, 128n, 2n ** 31n, 2n ** 32n, 2n ** 52n, -(2n ** 52n), 2n ** 52n - 1n, 2n ** 53n, -(2n ** 53n),
  2n ** 53n - 1n, 2n ** 63n - 1n, -(2n ** 63n), 1700000000n];
const U64 = [0n, 1n, 127n, 128n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 35n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 56n, 2n ** 63n, 2n ** 64n - 1n];
const F64 = [0, -0, 1, -1, 1.5, NaN, Infinity, -Infinity, 2 ** 53, Number.MAX_VALUE, Number.MIN_VALUE, -1e-300];
const F32 = [0, -0, 1, -1, 1.5, NaN, Infinity, -Infinity, 3.4028234663852886e38, -3.4028234663852886e38, 1e-40, 0.1];

function scalarValue(t: ScalarType, longAsString: boolean): unknown {
  const zero = rnd() < 0.15;
  switch (t) {
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return zero ? 0 : rnd() < 0.5 ? pick(I32) : (int(2 ** 32) | 0);
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return zero ? 0 : rnd() < 0.5 ? pick(U32) : int(2 ** 32);
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64: {
      const v = zero ? 0n : rnd() < 0.6 ? pick(I64) : BigInt(int(2 ** 31)) * BigInt(int(2 ** 31)) * (rnd() < 0.5 ? -1n : 1n);
      return longAsString ? String(v) : v;
    }
    case ScalarType.UINT64:
    case ScalarType.FIXED64: {
      const v = zero ? 0n : rnd() < 0.6 ? pick(U64) : BigInt(int(2 ** 31)) * BigInt(int(2 ** 33));
      return longAsString ? String(v) : v;
    }
    case ScalarType.DOUBLE:
      return zero ? 0 : rnd() < 0.6 ? pick(F64) : (rnd() - 0.5) * 10 ** int(30);
    case ScalarType.FLOAT:
      return zero ? 0 : rnd() < 0.6 ? pick(F32) : Math.fround((rnd() - 0.5) * 10 ** int(20));
    case ScalarType.BOOL:
      return zero ? false : rnd() < 0.7;
    case ScalarType.STRING:
      return zero ? "" : randomString();
    case ScalarType.BYTES: {
      const b = new Uint8Array(zero ? 0 : int(300));
      for (let i = 0; i < b.length; i++) b[i] = int(256);
      return b;
    }
  }
}

function enumValue(f: { enum: { values: readonly { number: number }[] } }): number {
  const r = rnd();
  if (r < 0.15) return 0;
  if (r < 0.25) return pick([-1, 99, 2147483647, -2147483648]); // unknown (open) values
  return pick(f.enum.values).number;
}

function mapKey(t: ScalarType): string {
  switch (t) {
    case ScalarType.STRING:
      return randomString();
    case ScalarType.BOOL:
      return rnd() < 0.5 ? "true" : "false";
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return String(scalarValue(t, true));
    default:
      return String(scalarValue(t, false));
  }
}

const isWrapper = (typeName: string) => /^google\.protobuf\.[A-Za-z0-9]+Value$/.test(typeName) && typeName !== "google.protobuf.Value" && typeName !== "google.protobuf.ListValue";
const isJsonStruct = (f: DescField, m: DescMessage) => m.typeName === "google.protobuf.Struct" && f.parent.typeName !== "google.protobuf.Value";

function jsonObject(): unknown {
  return { a: 1, b: randomString(), c: [true, null, 2.5], d: { e: "f" } };
}

let budget = 0;

function randomMessage(desc: DescMessage, depth: number): Message {
  budget--;
  const m = create(desc) as Record<string, unknown>;
  for (const f of desc.fields) {
    if (f.oneof) continue;
    if (rnd() < 0.3) continue;
    const v = fieldValue(f, depth, false);
    if (v !== undefined) m[f.localName] = v;
  }
  for (const o of desc.oneofs) {
    if (rnd() < 0.3) continue;
    const f = pick(o.fields);
    const v = fieldValue(f, depth, true);
    if (v !== undefined) m[o.localName] = { case: f.localName, value: v };
  }
  if (rnd() < 0.15) {
    // unknown fields and extensions are kept raw in $unknown
    m.$unknown = [
      { no: 5000 + int(100), wireType: WireType.Varint, data: Uint8Array.of(0x96, 0x01) },
      { no: 70000, wireType: WireType.LengthDelimited, data: Uint8Array.of(3, 0x61, 0x62, 0x63) },
      { no: 1, wireType: WireType.Bit32, data: Uint8Array.of(1, 2, 3, 4) },
    ].slice(0, 1 + int(3));
  }
  return m as unknown as Message;
}

function messageValue(f: DescField, m: DescMessage, depth: number, inOneof: boolean, list: boolean): unknown {
  if (isJsonStruct(f, m)) return jsonObject();
  if (!list && !inOneof && f.fieldKind === "message" && isWrapper(m.typeName)) {
    const vf = m.fields[0]!;
    return scalarValue(vf.scalar!, false);
  }
  if (depth >= 4 || budget <= 0) return undefined;
  return randomMessage(m, depth + 1);
}

function fieldValue(f: DescField, depth: number, inOneof: boolean): unknown {
  switch (f.fieldKind) {
    case "scalar":
      return scalarValue(f.scalar, f.longAsString);
    case "enum":
      return enumValue(f);
    case "message":
      return messageValue(f, f.message, depth, inOneof, false);
    case "list": {
      const n = depth >= 3 && f.listKind === "message" ? int(2) : int(4);
      const out: unknown[] = [];
      for (let i = 0; i < n; i++) {
        const v =
          f.listKind === "scalar" ? scalarValue(f.scalar, f.longAsString)
          : f.listKind === "enum" ? enumValue(f)
          : messageValue(f, f.message, depth, false, true);
        if (v !== undefined) out.push(v);
      }
      return out;
    }
    case "map": {
      const out: Record<string, unknown> = {};
      for (let i = int(4); i > 0; i--) {
        const v =
          f.mapKind === "scalar" ? scalarValue(f.scalar, false)
          : f.mapKind === "enum" ? enumValue(f)
          : messageValue(f, f.message, depth, false, true);
        if (v !== undefined) out[mapKey(f.mapKey)] = v;
      }
      return out;
    }
  }
}

// ---- the project's types ------------------------------------------------------------------

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith("_pb.ts")) out.push(p);
  }
  return out;
}

async function projectMessages(): Promise<DescMessage[]> {
  const files = new Set<DescFile>();
  const addFile = (f: DescFile) => {
    if (files.has(f)) return;
    files.add(f);
    for (const d of f.dependencies) addFile(d);
  };
  for (const p of walk(genDir)) {
    const mod = (await import(pathToFileURL(p).href)) as Record<string, unknown>;
    for (const v of Object.values(mod)) {
      if (v && typeof v === "object" && (v as { kind?: string }).kind === "file") addFile(v as DescFile);
    }
  }
  const out: DescMessage[] = [];
  const addMsg = (m: DescMessage) => {
    out.push(m);
    for (const n of m.nestedMessages) addMsg(n);
  };
  for (const f of files) for (const m of f.messages) addMsg(m);
  return out;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}

function assertSame(desc: DescMessage, msg: Message) {
  const want = toBinary(desc, msg);
  const got = encodeBinary(desc, msg);
  if (hex(got) !== hex(want)) {
    expect.fail(`${desc.typeName}: fast ${hex(got)} != toBinary ${hex(want)}`);
  }
  const frame = encodeBinaryEnveloped(desc, msg);
  expect(hex(frame)).toBe(hex(encodeEnvelope(want)));
}

function assertSameOrSameError(desc: DescMessage, msg: Message) {
  let err: string | undefined;
  try {
    toBinary(desc, msg);
  } catch (e) {
    err = (e as Error).message;
  }
  if (err === undefined) return assertSame(desc, msg);
  expect(() => encodeBinary(desc, msg)).toThrow(err);
  expect(() => encodeBinaryEnveloped(desc, msg)).toThrow(err);
}

const SAMPLES = 150;

describe("encodeBinary matches toBinary", async () => {
  const messages = await projectMessages();

  it("covers the project's types, their imports and the well-known types", () => {
    const names = new Set(messages.map((m) => m.typeName));
    for (const n of [
      "myevents.v1.GetEventResponse",
      "myevents.v1.Event",
      "google.protobuf.Timestamp",
      "buf.validate.FieldRules",
      "google.protobuf.FileDescriptorProto",
      "google.protobuf.Duration",
    ]) {
      expect(names, n).toContain(n);
    }
    expect(messages.length).toBeGreaterThan(50);
  });

  it("every project type takes the fast path (no plan fallback)", () => {
    const slow = messages.filter((m) => !isFastPathType(m)).map((m) => m.typeName);
    expect(slow).toEqual([]);
  });

  it(`${SAMPLES} random messages of every type give the same bytes`, () => {
    seed = 12345;
    let n = 0;
    for (const desc of messages) {
      assertSameOrSameError(desc, create(desc)); // the empty message (required fields: both throw)
      const afterEmpty = encoderStats.fallbacks;
      for (let i = 0; i < SAMPLES; i++) {
        budget = 40;
        const m = randomMessage(desc, 0);
        setRequired(m, desc); // proto2 required fields in descriptor.proto (e.g. NamePart)
        assertSame(desc, m);
        n++;
      }
      // valid input never needs the toBinary rescue
      expect(encoderStats.fallbacks - afterEmpty, `${desc.typeName}: ${String(encoderStats.lastError)}`).toBe(0);
    }
    expect(n).toBe(messages.length * SAMPLES);
    console.log(`${messages.length} message types, ${n} random messages`);
  });
});

// ---- a hand-built schema for what gen/ does not have ---------------------------------------

function testRegistry() {
  const p2 = create(FileDescriptorProtoSchema, {
    name: "enc/test2.proto",
    package: "enc.test",
    syntax: "proto2",
    messageType: [
      {
        name: "P2",
        field: [
          { name: "req", number: 1, label: L.REQUIRED, type: T.INT32 },
          { name: "s", number: 2, label: L.OPTIONAL, type: T.STRING, defaultValue: "hi" },
          { name: "i64s", number: 3, label: L.OPTIONAL, type: T.INT64, options: { jstype: 1 /* JS_STRING */ } },
          { name: "unpacked", number: 4, label: L.REPEATED, type: T.INT32 },
          { name: "packed", number: 5, label: L.REPEATED, type: T.SINT64, options: { packed: true } },
          { name: "grp", number: 6, label: L.OPTIONAL, type: T.GROUP, typeName: ".enc.test.P2.Grp" },
          { name: "rgrp", number: 9, label: L.REPEATED, type: T.GROUP, typeName: ".enc.test.P2.RGrp" },
          { name: "child", number: 11, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".enc.test.P2" },
          { name: "m64", number: 12, label: L.REPEATED, type: T.MESSAGE, typeName: ".enc.test.P2.M64Entry" },
          { name: "mb", number: 13, label: L.REPEATED, type: T.MESSAGE, typeName: ".enc.test.P2.MbEntry" },
          { name: "me", number: 14, label: L.REPEATED, type: T.MESSAGE, typeName: ".enc.test.P2.MeEntry" },
          { name: "e", number: 15, label: L.OPTIONAL, type: T.ENUM, typeName: ".enc.test.E", defaultValue: "E_TWO" },
          { name: "es", number: 16, label: L.REPEATED, type: T.ENUM, typeName: ".enc.test.E" },
          { name: "f64", number: 17, label: L.OPTIONAL, type: T.FIXED64 },
          { name: "sf64", number: 18, label: L.OPTIONAL, type: T.SFIXED64, options: { jstype: 1 } },
          { name: "by", number: 19, label: L.OPTIONAL, type: T.BYTES },
          { name: "d", number: 20, label: L.OPTIONAL, type: T.DOUBLE, defaultValue: "1.5" },
          { name: "fl", number: 21, label: L.OPTIONAL, type: T.FLOAT },
          { name: "os", number: 22, label: L.OPTIONAL, type: T.STRING, oneofIndex: 0 },
          { name: "om", number: 23, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".enc.test.P2", oneofIndex: 0 },
          { name: "u32s", number: 24, label: L.REPEATED, type: T.UINT32, options: { packed: true } },
          { name: "fl32s", number: 25, label: L.REPEATED, type: T.FLOAT, options: { packed: true } },
          // declared out of number order: output is sorted by number
          { name: "early", number: 0x1fffffff, label: L.OPTIONAL, type: T.BOOL },
          { name: "late", number: 8, label: L.OPTIONAL, type: T.SINT32 },
        ],
        oneofDecl: [{ name: "o" }],
        extensionRange: [{ start: 100, end: 200 }],
        nestedType: [
          {
            name: "Grp",
            field: [
              { name: "a", number: 7, label: L.OPTIONAL, type: T.INT32 },
              { name: "b", number: 10, label: L.REPEATED, type: T.STRING },
            ],
          },
          { name: "RGrp", field: [{ name: "c", number: 26, label: L.OPTIONAL, type: T.UINT64 }] },
          {
            name: "M64Entry",
            options: { mapEntry: true },
            field: [
              { name: "key", number: 1, label: L.OPTIONAL, type: T.INT64 },
              { name: "value", number: 2, label: L.OPTIONAL, type: T.STRING },
            ],
          },
          {
            name: "MbEntry",
            options: { mapEntry: true },
            field: [
              { name: "key", number: 1, label: L.OPTIONAL, type: T.BOOL },
              { name: "value", number: 2, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".enc.test.P2" },
            ],
          },
          {
            name: "MeEntry",
            options: { mapEntry: true },
            field: [
              { name: "key", number: 1, label: L.OPTIONAL, type: T.UINT32 },
              { name: "value", number: 2, label: L.OPTIONAL, type: T.ENUM, typeName: ".enc.test.E" },
            ],
          },
        ],
      },
    ],
    enumType: [{ name: "E", value: [{ name: "E_ONE", number: 1 }, { name: "E_TWO", number: 2 }] }],
  });
  const p3 = create(FileDescriptorProtoSchema, {
    name: "enc/test3.proto",
    package: "enc.test3",
    syntax: "proto3",
    dependency: ["google/protobuf/wrappers.proto", "google/protobuf/struct.proto"],
    messageType: [
      {
        name: "W3",
        field: [
          { name: "sv", number: 1, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".google.protobuf.StringValue" },
          { name: "iv", number: 2, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".google.protobuf.Int64Value" },
          { name: "bv", number: 3, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".google.protobuf.BoolValue" },
          { name: "dv", number: 4, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".google.protobuf.DoubleValue" },
          { name: "byv", number: 5, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".google.protobuf.BytesValue" },
          { name: "u32v", number: 6, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".google.protobuf.UInt32Value" },
          { name: "wl", number: 7, label: L.REPEATED, type: T.MESSAGE, typeName: ".google.protobuf.Int32Value" },
          { name: "ow", number: 8, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".google.protobuf.FloatValue", oneofIndex: 0 },
          { name: "opt", number: 9, label: L.OPTIONAL, type: T.INT32, proto3Optional: true, oneofIndex: 1 },
          { name: "ostr", number: 10, label: L.OPTIONAL, type: T.STRING, proto3Optional: true, oneofIndex: 2 },
          { name: "js", number: 11, label: L.OPTIONAL, type: T.UINT64, options: { jstype: 1 } },
          { name: "val", number: 12, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".google.protobuf.Value" },
          { name: "lst", number: 13, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".google.protobuf.ListValue" },
          { name: "unp", number: 14, label: L.REPEATED, type: T.DOUBLE, options: { packed: false } },
        ],
        oneofDecl: [{ name: "w" }, { name: "_opt" }, { name: "_ostr" }],
      },
      {
        // google.protobuf.Struct as a field is a JsonObject in protobuf-es: not on the fast path
        name: "S3",
        field: [
          { name: "name", number: 1, label: L.OPTIONAL, type: T.STRING },
          { name: "st", number: 2, label: L.OPTIONAL, type: T.MESSAGE, typeName: ".google.protobuf.Struct" },
        ],
      },
      {
        // reaches S3, so it falls back as a whole
        name: "HoldsS3",
        field: [{ name: "s", number: 1, label: L.REPEATED, type: T.MESSAGE, typeName: ".enc.test3.S3" }],
      },
    ],
  });
  const deps = new Map<string, DescFile>([
    ["google/protobuf/wrappers.proto", file_google_protobuf_wrappers],
    ["google/protobuf/struct.proto", file_google_protobuf_struct],
  ]);
  const r2 = createFileRegistry(p2, () => undefined);
  const r3 = createFileRegistry(p3, (n) => deps.get(n));
  return {
    P2: r2.getMessage("enc.test.P2")!,
    W3: r3.getMessage("enc.test3.W3")!,
    S3: r3.getMessage("enc.test3.S3")!,
    HoldsS3: r3.getMessage("enc.test3.HoldsS3")!,
  };
}

describe("hand-built proto2/proto3 schema", () => {
  const { P2, W3, S3, HoldsS3 } = testRegistry();

  it("the descriptors have the features under test", () => {
    const f = (name: string) => P2.fields.find((x) => x.name === name) as unknown as Record<string, unknown>;
    expect(f("grp").delimitedEncoding).toBe(true);
    expect(f("rgrp").delimitedEncoding).toBe(true);
    expect(f("unpacked").packed).toBe(false);
    expect(f("packed").packed).toBe(true);
    expect(f("i64s").longAsString).toBe(true);
    expect(f("req").presence).toBe(3); // LEGACY_REQUIRED
  });

  it("proto2 (groups, required, defaults, unpacked, maps, extensions) and proto3 wrappers match", () => {
    seed = 777;
    const before = encoderStats.fallbacks;
    expect(isFastPathType(P2)).toBe(true);
    expect(isFastPathType(W3)).toBe(true);
    for (let i = 0; i < 2000; i++) {
      budget = 30;
      const m = randomMessage(P2, 0);
      setRequired(m, P2); // unset required fields make both throw (tested below)
      assertSame(P2, m);
      budget = 30;
      assertSame(W3, randomMessage(W3, 0));
    }
    expect(encoderStats.fallbacks - before).toBe(0);
  });

  it("an unset required field throws as toBinary does", () => {
    const m = create(P2);
    expect(() => toBinary(P2, m)).toThrow(/required field not set/);
    expect(() => encodeBinary(P2, m)).toThrow(/required field not set/);
  });

  it("a type it does not support (Struct field) falls back to toBinary's bytes", () => {
    expect(isFastPathType(S3)).toBe(false);
    expect(isFastPathType(HoldsS3)).toBe(false);
    seed = 4242;
    for (let i = 0; i < 200; i++) {
      budget = 10;
      assertSame(S3, randomMessage(S3, 0));
      budget = 10;
      assertSame(HoldsS3, randomMessage(HoldsS3, 0));
    }
    const s = create(S3, { name: "n", st: { a: 1, b: [true, "x"], c: { d: null } } } as never);
    expect(hex(encodeBinary(S3, s))).toBe(hex(toBinary(S3, s)));
  });

  it("invalid values are left to toBinary (same error)", () => {
    const m = create(P2, { req: 1.5 } as never);
    expect(() => toBinary(P2, m)).toThrow();
    const err = (() => {
      try {
        toBinary(P2, m);
      } catch (e) {
        return (e as Error).message;
      }
    })();
    expect(() => encodeBinary(P2, m)).toThrow(err);
    expect(() => encodeBinaryEnveloped(P2, m)).toThrow(err);
  });
});

/** Required fields nested anywhere in a random P2 get a value, so toBinary accepts it. */
function setRequired(m: unknown, desc: DescMessage): void {
  if (!m || typeof m !== "object") return;
  const o = m as Record<string, unknown>;
  if (o.$typeName !== desc.typeName) return;
  for (const f of desc.fields) {
    if (f.presence === 3 && !Object.prototype.hasOwnProperty.call(o, f.localName)) {
      o[f.localName] = f.fieldKind === "scalar" ? scalarValue(f.scalar, f.longAsString) : f.fieldKind === "enum" ? enumValue(f) : undefined;
    }
    let v: unknown = f.oneof ? ((o[f.oneof.localName] as { case?: string; value?: unknown }).case === f.localName ? (o[f.oneof.localName] as { value: unknown }).value : undefined) : o[f.localName];
    if (v === undefined) continue;
    if (f.fieldKind === "message") setRequired(v, f.message);
    else if (f.fieldKind === "list" && f.listKind === "message") for (const x of v as unknown[]) setRequired(x, f.message);
    else if (f.fieldKind === "map" && f.mapKind === "message") for (const x of Object.values(v as object)) setRequired(x, f.message);
    v = undefined;
  }
}
