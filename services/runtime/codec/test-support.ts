// Shared by the codec tests (binary-encoder.test.ts, json-encoder.test.ts): a seeded generator of
// random protobuf-es messages of any type, and the message types the project's generated code
// reaches. The name keeps it out of the build (scripts/build-dist.sh skips test-support.ts).
import { readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { create, ScalarType, type DescField, type DescFile, type DescMessage, type Message } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";

// ---- seeded PRNG ---------------------------------------------------------------------------

export interface Random {
  /** In [0, 1). */
  rnd(): number;
  /** An integer in [0, n). */
  int(n: number): number;
  pick<V>(a: readonly V[]): V;
  /** Restarts the sequence, so that a test sees the same values whatever ran before it. */
  reseed(seed: number): void;
}

export function seededRandom(seed = 0x9e3779b9): Random {
  function rnd(): number {
    // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  const int = (n: number) => Math.floor(rnd() * n);
  return {
    rnd,
    int,
    pick: <V>(a: readonly V[]): V => a[int(a.length)]!,
    reseed: (s: number) => {
      seed = s;
    },
  };
}

// ---- random messages -----------------------------------------------------------------------

/** Where the two encoders' tests want different values. */
export interface MessageOptions {
  /** What random strings are made of, besides runs of ASCII. */
  chars: readonly string[];
  /** Printable ASCII strings are shorter than this (around the encoder's short-string threshold). */
  asciiLength: number;
  /** Values each scalar type takes about half the time (edge cases); the rest are random. */
  values: {
    i32: readonly number[];
    u32: readonly number[];
    i64: readonly bigint[];
    u64: readonly bigint[];
    f64: readonly number[];
    f32: readonly number[];
  };
  /** Random bytes are shorter than this. */
  bytesLength: number;
  /** Maps have fewer entries than this. */
  mapSize: number;
  /** String map keys are one of these 30% of the time (e.g. integer-like keys a JS object reorders). */
  stringKeys?: readonly string[];
  /** Messages get unknown fields ($unknown) 15% of the time. */
  unknownFields?: boolean;
  /**
   * Types the encoder under test leaves to protobuf-es: fields of these types stay unset 80% of the
   * time, and onFallback is called whenever one gets into a message.
   */
  fallbackTypes?: ReadonlySet<string>;
  onFallback?: () => void;
  /** A message to use for a type instead of a random one (e.g. a Timestamp in range), or undefined. */
  instead?: (desc: DescMessage) => Message | undefined;
}

export interface MessageGenerator {
  /**
   * A random message of the type, nested at most 4 deep and with about `budget` messages at most;
   * proto2 required fields are set wherever they are, so that protobuf-es accepts it.
   */
  message(desc: DescMessage, budget: number): Message;
}

const isWrapper = (typeName: string) => /^google\.protobuf\.[A-Za-z0-9]+Value$/.test(typeName) && typeName !== "google.protobuf.Value" && typeName !== "google.protobuf.ListValue";
/** google.protobuf.Struct as a field (not inside a Value) is a plain JSON object in protobuf-es. */
const isJsonStruct = (f: DescField, m: DescMessage) => m.typeName === "google.protobuf.Struct" && f.parent.typeName !== "google.protobuf.Value";

export function messageGenerator(random: Random, options: MessageOptions): MessageGenerator {
  const { rnd, int, pick } = random;
  const { chars, values, fallbackTypes, onFallback, instead } = options;
  let budget = 0;

  function randomString(): string {
    switch (int(6)) {
      case 0:
        return "";
      case 1:
        return "x".repeat(int(200)); // long ASCII (native path)
      case 2: {
        let s = "";
        for (let i = int(options.asciiLength); i > 0; i--) s += String.fromCharCode(32 + int(95));
        return s;
      }
      default: {
        let s = "";
        for (let i = int(90); i > 0; i--) s += pick(chars);
        return s;
      }
    }
  }

  function scalarValue(t: ScalarType, longAsString: boolean): unknown {
    const zero = rnd() < 0.15;
    switch (t) {
      case ScalarType.INT32:
      case ScalarType.SINT32:
      case ScalarType.SFIXED32:
        return zero ? 0 : rnd() < 0.5 ? pick(values.i32) : int(2 ** 32) | 0;
      case ScalarType.UINT32:
      case ScalarType.FIXED32:
        return zero ? 0 : rnd() < 0.5 ? pick(values.u32) : int(2 ** 32);
      case ScalarType.INT64:
      case ScalarType.SINT64:
      case ScalarType.SFIXED64: {
        const v = zero ? 0n : rnd() < 0.6 ? pick(values.i64) : BigInt(int(2 ** 31)) * BigInt(int(2 ** 31)) * (rnd() < 0.5 ? -1n : 1n);
        return longAsString ? String(v) : v;
      }
      case ScalarType.UINT64:
      case ScalarType.FIXED64: {
        const v = zero ? 0n : rnd() < 0.6 ? pick(values.u64) : BigInt(int(2 ** 31)) * BigInt(int(2 ** 33));
        return longAsString ? String(v) : v;
      }
      case ScalarType.DOUBLE:
        return zero ? 0 : rnd() < 0.6 ? pick(values.f64) : (rnd() - 0.5) * 10 ** int(30);
      case ScalarType.FLOAT:
        return zero ? 0 : rnd() < 0.6 ? pick(values.f32) : Math.fround((rnd() - 0.5) * 10 ** int(20));
      case ScalarType.BOOL:
        return zero ? false : rnd() < 0.7;
      case ScalarType.STRING:
        return zero ? "" : randomString();
      case ScalarType.BYTES: {
        const b = new Uint8Array(zero ? 0 : int(options.bytesLength));
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
        return options.stringKeys && rnd() < 0.3 ? pick(options.stringKeys) : randomString();
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

  function randomMessage(desc: DescMessage, depth: number): Message {
    budget--;
    if (fallbackTypes?.has(desc.typeName)) onFallback?.();
    const special = instead?.(desc);
    if (special) return special;
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
    if (options.unknownFields && rnd() < 0.15) {
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
    if (fallbackTypes?.has(m.typeName) && rnd() < 0.8) return undefined; // mostly unset: the rest of the message still takes the fast path
    if (isJsonStruct(f, m)) {
      if (fallbackTypes?.has(m.typeName)) onFallback?.();
      return { a: 1, b: randomString(), c: [true, null, 2.5], d: { e: "f" } };
    }
    if (!list && !inOneof && f.fieldKind === "message" && isWrapper(m.typeName)) return scalarValue(m.fields[0]!.scalar!, false);
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
        for (let i = int(options.mapSize); i > 0; i--) {
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

  /** Required fields nested anywhere get a value. */
  function setRequired(m: unknown, desc: DescMessage): void {
    if (!m || typeof m !== "object") return;
    const o = m as Record<string, unknown>;
    if (o.$typeName !== desc.typeName) return;
    for (const f of desc.fields) {
      if (f.presence === 3 /* LEGACY_REQUIRED */ && !Object.prototype.hasOwnProperty.call(o, f.localName)) {
        o[f.localName] = f.fieldKind === "scalar" ? scalarValue(f.scalar, f.longAsString) : f.fieldKind === "enum" ? enumValue(f) : undefined;
      }
      const oneof = f.oneof ? (o[f.oneof.localName] as { case?: string; value?: unknown }) : undefined;
      const v: unknown = oneof ? (oneof.case === f.localName ? oneof.value : undefined) : o[f.localName];
      if (v === undefined) continue;
      if (f.fieldKind === "message") setRequired(v, f.message);
      else if (f.fieldKind === "list" && f.listKind === "message") for (const x of v as unknown[]) setRequired(x, f.message);
      else if (f.fieldKind === "map" && f.mapKind === "message") for (const x of Object.values(v as object)) setRequired(x, f.message);
    }
  }

  return {
    message(desc, maxMessages) {
      budget = maxMessages;
      const m = randomMessage(desc, 0);
      setRequired(m, desc);
      return m;
    },
  };
}

// ---- the project's types -------------------------------------------------------------------

const genDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../gen");

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith("_pb.ts")) out.push(p);
  }
  return out;
}

/** Every message type in gen/ and in the files it imports (google.protobuf, buf.validate), nested ones too. */
export async function projectMessages(): Promise<DescMessage[]> {
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
