// Equivalence of the fast encoder with protobuf-es's toBinary, on random messages of every type
// the project's generated code reaches (gen/ plus the google.protobuf and buf.validate files they
// import), and on a hand-built proto2/proto3 schema for what gen/ lacks (groups, required,
// unpacked repeated, jstype=JS_STRING, wrappers, Struct fallback).
import { describe, expect, it } from "vitest";
import {
  create,
  createFileRegistry,
  toBinary,
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
import { encodeEnvelope } from "../grpc-wire.js";
import { encodeBinary, encodeBinaryEnveloped, encoderStats, isFastPathType } from "./binary-encoder.js";
import { messageGenerator, projectMessages, seededRandom } from "./test-support.js";

// ---- random messages, with the values the binary encoding is sensitive to -------------------

const random = seededRandom();
const gen = messageGenerator(random, {
  chars: [
    ..."abcXYZ09 _-/.:",
    "é", "ß", "ü", "Ω", "ж", // 2 bytes
    "€", "日", "本", "語", "\u0800", "\uffff", // 3 bytes
    "😀", "🎉", "𝄞", // surrogate pairs, 4 bytes
    "\ud800", "\udc00", "\udbff", // lone surrogates (TextEncoder writes U+FFFD)
  ],
  asciiLength: 70, // ASCII of any length around the short-string thresholds
  values: {
    i32: [0, 1, -1, 127, 128, 300, 16384, -2147483648, 2147483647, -300],
    u32: [0, 1, 127, 128, 16383, 16384, 2147483648, 4294967295],
    i64: [0n, 1n, -1n, 127n, 128n, 2n ** 31n, 2n ** 32n, 2n ** 52n, -(2n ** 52n), 2n ** 52n - 1n, 2n ** 53n, -(2n ** 53n),
      2n ** 53n - 1n, 2n ** 63n - 1n, -(2n ** 63n), 1700000000n],
    u64: [0n, 1n, 127n, 128n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 35n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 56n, 2n ** 63n, 2n ** 64n - 1n],
    f64: [0, -0, 1, -1, 1.5, NaN, Infinity, -Infinity, 2 ** 53, Number.MAX_VALUE, Number.MIN_VALUE, -1e-300],
    f32: [0, -0, 1, -1, 1.5, NaN, Infinity, -Infinity, 3.4028234663852886e38, -3.4028234663852886e38, 1e-40, 0.1],
  },
  bytesLength: 300,
  mapSize: 4,
  unknownFields: true,
});

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
    random.reseed(12345);
    let n = 0;
    for (const desc of messages) {
      assertSameOrSameError(desc, create(desc)); // the empty message (required fields: both throw)
      const afterEmpty = encoderStats.fallbacks;
      for (let i = 0; i < SAMPLES; i++) {
        // proto2 required fields (descriptor.proto's NamePart) are set: toBinary would throw
        assertSame(desc, gen.message(desc, 40));
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
    random.reseed(777);
    const before = encoderStats.fallbacks;
    expect(isFastPathType(P2)).toBe(true);
    expect(isFastPathType(W3)).toBe(true);
    for (let i = 0; i < 2000; i++) {
      assertSame(P2, gen.message(P2, 30)); // required fields set (unset, both throw: tested below)
      assertSame(W3, gen.message(W3, 30));
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
    random.reseed(4242);
    for (let i = 0; i < 200; i++) {
      assertSame(S3, gen.message(S3, 10));
      assertSame(HoldsS3, gen.message(HoldsS3, 10));
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
