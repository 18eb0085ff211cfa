// Offline validation of an Envoy bootstrap config (YAML) against Envoy's own
// API: the v3 protos that @grpc/grpc-js-xds ships in deps/, compiled with buf
// into a descriptor set, then used in three passes:
//
//  1. decode: walk the YAML nodes along the descriptors, as Envoy's loader
//     does (YAML -> JSON -> protobuf, unknown fields rejected): unknown and
//     deprecated fields, wrong types, two members of a oneof, unknown Any
//     `@type`s. Every problem names its YAML path (and line).
//  2. fromJson into envoy.config.bootstrap.v3.Bootstrap with a registry for
//     Any, as an independent check that the decoded config is a message.
//  3. rules: walk the decoded message (Any unpacked) and enforce the
//     protoc-gen-validate annotations (`validate.rules`, oneof
//     `validate.required`) that Envoy enforces at load.
//
// It does not run Envoy: semantic checks Envoy does in C++ (e.g. that a
// route's cluster exists, the router is the last filter) are the tests' job.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, readdir, rename, rm, symlink, writeFile } from "node:fs/promises";
import { isIP } from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import {
  createFileRegistry,
  fromBinary,
  fromJson,
  getOption,
  hasOption,
  ScalarType,
  type DescEnum,
  type DescExtension,
  type DescField,
  type DescMessage,
  type DescOneof,
  type FileRegistry,
  type JsonValue,
  type Message,
} from "@bufbuild/protobuf";
import { reflect, isReflectMessage, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import { anyUnpack, FileDescriptorSetSchema, type Any } from "@bufbuild/protobuf/wkt";
import { Document, isAlias, isMap, isNode, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from "yaml";

const run = promisify(execFile);
const root = process.cwd();
const depsDir = path.join(root, "node_modules", "@grpc", "grpc-js-xds", "deps");
const bufBin = path.join(root, "node_modules", ".bin", "buf");
const cacheDir = path.join(root, "node_modules", ".cache", "myevents-edge");
/** Bump when the way the schema is built changes, to invalidate the cache. */
const SCHEMA_RECIPE = "envoy-api-v1";

export interface EnvoySchema {
  registry: FileRegistry;
  bootstrap: DescMessage;
  /** `validate.rules` (FieldOptions) */
  rules: DescExtension;
  /** `validate.required` (OneofOptions) */
  oneofRequired: DescExtension;
  /** `validate.disabled` / `validate.ignored` (MessageOptions) */
  messageOff: DescExtension[];
}

export interface ConfigIssue {
  /** YAML path, e.g. `static_resources.clusters[1].connect_timeout` ("" = the document). */
  path: string;
  message: string;
  /** 1-based line in the YAML text, when the node came from the text. */
  line?: number;
}

export function formatIssue(issue: ConfigIssue): string {
  return `${issue.path || "(document)"}: ${issue.message}${issue.line ? ` (line ${issue.line})` : ""}`;
}

// ---------------------------------------------------------------------------
// Building the schema

let schemaPromise: Promise<EnvoySchema> | undefined;

/** Envoy's API as a registry; built once with buf and cached in node_modules/.cache. */
export function loadEnvoySchema(): Promise<EnvoySchema> {
  schemaPromise ??= buildSchema();
  return schemaPromise;
}

async function buildSchema(): Promise<EnvoySchema> {
  const bytes = await cachedDescriptorSet();
  const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, bytes));
  const need = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`Envoy schema lacks ${what}`);
    return value;
  };
  return {
    registry,
    bootstrap: need(registry.getMessage("envoy.config.bootstrap.v3.Bootstrap"), "Bootstrap"),
    rules: need(registry.getExtension("validate.rules"), "validate.rules"),
    oneofRequired: need(registry.getExtension("validate.required"), "validate.required"),
    messageOff: ["validate.disabled", "validate.ignored"].flatMap((n) => registry.getExtension(n) ?? []),
  };
}

async function cachedDescriptorSet(): Promise<Uint8Array> {
  const versions = await Promise.all(
    ["@grpc/grpc-js-xds", "@bufbuild/buf"].map(async (p) => JSON.parse(await readFile(path.join(root, "node_modules", p, "package.json"), "utf8")).version as string),
  );
  const key = createHash("sha256").update([SCHEMA_RECIPE, ...versions].join("\n")).digest("hex").slice(0, 16);
  const file = path.join(cacheDir, `envoy-api-${key}.binpb`);
  try {
    return await readFile(file);
  } catch {
    // not built yet
  }
  await mkdir(cacheDir, { recursive: true });
  const bytes = await buildDescriptorSet();
  // Write then rename: test files running in parallel never see half a file.
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, bytes);
  await rename(tmp, file);
  return bytes;
}

/**
 * Compiles the Envoy API protos in a throwaway buf workspace: the deps'
 * folders linked in as modules, plus a patched copy of validate.proto.
 * Files whose imports are not shipped (v2 API leftovers, OpenCensus and
 * OpenTelemetry protos) are left out.
 */
async function buildDescriptorSet(): Promise<Uint8Array> {
  const work = await mkdtemp(path.join(cacheDir, "build-"));
  try {
    const modules = ["envoy-api", "xds", "googleapis"];
    for (const m of modules) await symlink(path.join(depsDir, m), path.join(work, m));
    // The deps' validate.proto is older than the Envoy protos that use it:
    // StringRules lacks `ignore_empty = 26` (envoy/config/core/v3/protocol.proto
    // and a few extensions set it), so buf would reject those files. A copy
    // with the field added, in this temp dir only, fixes the schema; the
    // rules pass below honours ignore_empty.
    const validate = await readFile(path.join(depsDir, "protoc-gen-validate", "validate", "validate.proto"), "utf8");
    await mkdir(path.join(work, "pgv", "validate"), { recursive: true });
    await writeFile(path.join(work, "pgv", "validate", "validate.proto"), patchValidateProto(validate));
    await writeFile(path.join(work, "buf.yaml"), `version: v2\nmodules:\n${[...modules, "pgv"].map((m) => `  - path: ${m}\n`).join("")}`);

    const excluded = await unbuildableFiles(modules);
    const out = path.join(work, "envoy.binpb");
    await run(bufBin, ["build", "--exclude-source-info", ...excluded.map((f) => `--exclude-path=${f}`), "-o", `${out}#format=binpb`], {
      cwd: work,
      maxBuffer: 16 * 1024 * 1024,
    });
    return await readFile(out);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Adds `optional bool ignore_empty = 26;` to StringRules unless it is there. */
export function patchValidateProto(text: string): string {
  const start = text.indexOf("message StringRules {");
  if (start < 0) throw new Error("validate.proto: StringRules not found");
  const body = text.slice(start, text.indexOf("\n}", start));
  if (/\bignore_empty\s*=\s*26\b/.test(body)) return text;
  const open = start + "message StringRules {".length;
  return `${text.slice(0, open)}\n    // Added by test/edge-config (newer protoc-gen-validate has it).\n    optional bool ignore_empty = 26;\n${text.slice(open)}`;
}

/** Workspace paths (module/file) of protos whose import closure is incomplete. */
async function unbuildableFiles(modules: string[]): Promise<string[]> {
  const owner = new Map<string, string>(); // import path -> module
  for (const m of modules) for (const f of await protoFiles(path.join(depsDir, m))) owner.set(f, m);
  const imports = new Map<string, string[]>();
  for (const [f, m] of owner) {
    const text = await readFile(path.join(depsDir, m, f), "utf8");
    imports.set(f, [...text.matchAll(/^import\s+(?:public\s+|weak\s+)?"([^"]+)"/gm)].map((x) => x[1]!));
  }
  const provided = (f: string) => f.startsWith("google/protobuf/") || f === "validate/validate.proto";
  const ok = new Map<string, boolean>();
  const good = (f: string): boolean => {
    if (provided(f)) return true;
    const known = ok.get(f);
    if (known !== undefined) return known;
    if (!owner.has(f)) return false;
    ok.set(f, true); // import cycles are not a reason to exclude
    const result = imports.get(f)!.every(good);
    ok.set(f, result);
    return result;
  };
  return [...owner].filter(([f]) => !good(f)).map(([f, m]) => `${m}/${f}`);
}

async function protoFiles(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(path.join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await protoFiles(dir, rel)));
    else if (entry.name.endsWith(".proto")) out.push(rel);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Validation

export interface ValidationResult {
  issues: ConfigIssue[];
  /** The decoded Bootstrap, when the YAML decoded (rules may still have failed). */
  bootstrap?: Message;
}

export interface ValidateOptions {
  /** Deprecated fields and enum values are errors unless allowed. */
  allowDeprecated?: boolean;
}

/** Validates Envoy bootstrap YAML (text, or a parsed and possibly edited Document). */
export function validateEnvoyConfig(schema: EnvoySchema, input: string | Document, options: ValidateOptions = {}): ValidationResult {
  const lines = new LineCounter();
  const doc = typeof input === "string" ? parseDocument(input, { lineCounter: lines }) : input;
  const v = new Validator(schema, doc, typeof input === "string" ? lines : undefined, options);
  if (doc.errors.length > 0) {
    return { issues: doc.errors.map((e) => ({ path: "", message: `YAML: ${e.message}`, line: e.linePos?.[0]?.line })) };
  }
  v.decodeMessage(schema.bootstrap, doc.contents, []);
  if (v.issues.length > 0) return { issues: v.issues };

  let bootstrap: Message;
  try {
    bootstrap = fromJson(schema.bootstrap, doc.toJS({ maxAliasCount: -1 }) as JsonValue, { registry: schema.registry });
  } catch (err) {
    return { issues: [{ path: "", message: `does not decode as ${schema.bootstrap.typeName}: ${(err as Error).message}` }] };
  }
  v.checkMessage(reflect(schema.bootstrap, bootstrap), doc.contents, []);
  return { issues: v.issues, bootstrap };
}

type Seg = string | number;

/** Types whose JSON form is not an object of fields. */
const WRAPPERS = new Set(
  ["Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes"].map((t) => `google.protobuf.${t}Value`),
);
const MAX_DURATION_SECONDS = 315_576_000_000n;

class Validator {
  readonly issues: ConfigIssue[] = [];

  constructor(
    private readonly schema: EnvoySchema,
    private readonly doc: Document,
    private readonly lines: LineCounter | undefined,
    private readonly options: ValidateOptions,
  ) {}

  // ---- pass 1: decode the YAML along the descriptors ----------------------

  decodeMessage(desc: DescMessage, raw: unknown, at: Seg[], skipKeys: readonly string[] = []): void {
    const node = this.deref(raw);
    if (node === undefined || isNull(node)) return;
    const special = this.decodeSpecial(desc, node, at);
    if (special) return;
    if (!isMap(node)) return this.report(at, node, `must be a mapping (${desc.typeName}), got ${describe(node)}`);
    const oneofSeen = new Map<DescOneof, string>();
    const fieldSeen = new Map<DescField, string>();
    for (const pair of node.items) {
      const keyNode = this.deref(pair.key);
      const key = isScalar(keyNode) ? keyNode.value : undefined;
      if (typeof key !== "string") {
        this.report(at, keyNode, `keys must be strings, got ${describe(keyNode)}`);
        continue;
      }
      if (skipKeys.includes(key)) continue;
      const here = [...at, key];
      const field = desc.fields.find((f) => f.name === key || f.jsonName === key);
      if (!field) {
        const hint = suggest(key, desc.fields.map((f) => f.name));
        this.report(here, keyNode, `unknown field (not in ${desc.typeName})${hint ? `; did you mean "${hint}"?` : ""}`);
        continue;
      }
      if (fieldSeen.has(field)) {
        this.report(here, keyNode, `field given twice (also as "${fieldSeen.get(field)}")`);
        continue;
      }
      fieldSeen.set(field, key);
      if (field.deprecated && !this.options.allowDeprecated) this.report(here, keyNode, `deprecated field of ${desc.typeName}`);
      const value = this.deref(pair.value);
      if (field.oneof && !isNull(value)) {
        const other = oneofSeen.get(field.oneof);
        if (other) this.report(here, keyNode, `only one of oneof "${field.oneof.name}" may be set, "${other}" is set too`);
        oneofSeen.set(field.oneof, key);
      }
      this.decodeField(field, value, here);
    }
  }

  private decodeField(field: DescField, node: unknown, at: Seg[]): void {
    if (isNull(node)) return; // JSON null: the default
    switch (field.fieldKind) {
      case "list": {
        if (!isSeq(node)) return this.report(at, node, `must be a list, got ${describe(node)}`);
        node.items.forEach((item, i) => {
          const el = this.deref(item);
          const here = [...at, i];
          if (isNull(el)) return this.report(here, el, "null is not allowed in a list");
          if (field.listKind === "message") this.decodeMessage(field.message, el, here);
          else if (field.listKind === "enum") this.decodeEnum(field.enum, el, here);
          else this.decodeScalar(field.scalar, el, here);
        });
        return;
      }
      case "map": {
        if (!isMap(node)) return this.report(at, node, `must be a mapping, got ${describe(node)}`);
        for (const pair of node.items) {
          const keyNode = this.deref(pair.key);
          const key = isScalar(keyNode) ? keyNode.value : undefined;
          const here = [...at, String(key)];
          if (typeof key !== "string" && typeof key !== "number" && typeof key !== "boolean") {
            this.report(at, keyNode, `map keys must be scalars, got ${describe(keyNode)}`);
            continue;
          }
          if (field.mapKey !== ScalarType.STRING) this.checkScalar(field.mapKey, String(key), here, keyNode);
          const value = this.deref(pair.value);
          if (field.mapKind === "message") this.decodeMessage(field.message, value, here);
          else if (field.mapKind === "enum") this.decodeEnum(field.enum, value, here);
          else this.decodeScalar(field.scalar, value, here);
        }
        return;
      }
      case "message":
        return this.decodeMessage(field.message, node, at);
      case "enum":
        return this.decodeEnum(field.enum, node, at);
      case "scalar":
        return this.decodeScalar(field.scalar, node, at);
    }
  }

  /** Well-known types with their own JSON form; false for ordinary messages. */
  private decodeSpecial(desc: DescMessage, node: YamlNode, at: Seg[]): boolean {
    const name = desc.typeName;
    if (name === "google.protobuf.Any") {
      this.decodeAny(node, at);
      return true;
    }
    if (WRAPPERS.has(name)) {
      this.decodeScalar(desc.fields[0]!.scalar!, node, at);
      return true;
    }
    const scalar = isScalar(node) ? node.value : undefined;
    switch (name) {
      case "google.protobuf.Duration": {
        const m = typeof scalar === "string" ? /^(-)?(\d+)(?:\.(\d{1,9}))?s$/.exec(scalar) : null;
        if (!m) this.report(at, node, `must be a duration string such as "1s" or "0.25s", got ${describe(node)}`);
        else if (BigInt(m[2]!) > MAX_DURATION_SECONDS) this.report(at, node, "duration out of range");
        return true;
      }
      case "google.protobuf.Timestamp":
        if (typeof scalar !== "string" || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/.test(scalar)) {
          this.report(at, node, `must be an RFC 3339 timestamp, got ${describe(node)}`);
        }
        return true;
      case "google.protobuf.FieldMask":
        if (typeof scalar !== "string") this.report(at, node, `must be a string of field paths, got ${describe(node)}`);
        return true;
      case "google.protobuf.Struct":
        if (!isMap(node)) this.report(at, node, `must be a mapping, got ${describe(node)}`);
        return true;
      case "google.protobuf.ListValue":
        if (!isSeq(node)) this.report(at, node, `must be a list, got ${describe(node)}`);
        return true;
      case "google.protobuf.Value":
        return true; // any JSON value
    }
    return false;
  }

  private decodeAny(node: YamlNode, at: Seg[]): void {
    if (!isMap(node)) return this.report(at, node, `must be a mapping with "@type", got ${describe(node)}`);
    const typeNode = this.deref(node.get("@type", true));
    const typeUrl = isScalar(typeNode) ? typeNode.value : undefined;
    if (typeof typeUrl !== "string") return this.report([...at, "@type"], typeNode ?? node, `"@type" is required (e.g. type.googleapis.com/<message name>)`);
    const desc = this.schema.registry.getMessage(typeUrl.slice(typeUrl.lastIndexOf("/") + 1));
    if (!desc) {
      return this.report([...at, "@type"], typeNode, `unknown type "${typeUrl}" (no such message in Envoy's API: misspelled, or an extension this schema lacks)`);
    }
    if (desc.typeName === "google.protobuf.Any" || WRAPPERS.has(desc.typeName) || isSpecialJson(desc.typeName)) {
      // These are packed as {"@type": ..., "value": <their JSON>}.
      for (const pair of node.items) {
        const k = (this.deref(pair.key) as { value?: unknown } | undefined)?.value;
        if (k !== "@type" && k !== "value") this.report([...at, String(k)], pair.key, `unknown field (an Any of ${desc.typeName} has only "value")`);
      }
      const value = this.deref(node.get("value", true));
      if (value !== undefined) this.decodeMessage(desc, value, [...at, "value"]);
      return;
    }
    this.decodeMessage(desc, node, at, ["@type"]);
  }

  private decodeEnum(desc: DescEnum, node: unknown, at: Seg[]): void {
    const v = isScalar(node) ? node.value : undefined;
    if (desc.typeName === "google.protobuf.NullValue" && (v === null || v === "NULL_VALUE")) return;
    if (typeof v === "string") {
      const value = desc.values.find((x) => x.name === v);
      if (!value) {
        const hint = suggest(v, desc.values.map((x) => x.name));
        return this.report(at, node, `unknown value "${v}" of enum ${desc.typeName}${hint ? `; did you mean "${hint}"?` : ""}`);
      }
      if (value.deprecated && !this.options.allowDeprecated) this.report(at, node, `deprecated value "${v}" of enum ${desc.typeName}`);
      return;
    }
    // Numbers are accepted (open enums); `defined_only` rules check them in pass 3.
    if (typeof v === "number" && Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) return;
    this.report(at, node, `must be a value name of enum ${desc.typeName}, got ${describe(node)}`);
  }

  private decodeScalar(type: ScalarType, node: unknown, at: Seg[]): void {
    if (!isScalar(node)) return this.report(at, node, `must be a ${scalarName(type)}, got ${describe(node)}`);
    if (node.value === null) return;
    this.checkScalar(type, node.value, at, node);
  }

  /** JSON mapping of protobuf scalars, as protobuf's JSON parser accepts them. */
  private checkScalar(type: ScalarType, v: unknown, at: Seg[], node: unknown): void {
    const bad = () => this.report(at, node, `must be a ${scalarName(type)}, got ${describe(node)}`);
    switch (type) {
      case ScalarType.STRING:
        return typeof v === "string" ? undefined : bad();
      case ScalarType.BOOL:
        return typeof v === "boolean" || v === "true" || v === "false" ? undefined : bad();
      case ScalarType.BYTES:
        return typeof v === "string" && /^[A-Za-z0-9+/_-]*={0,2}$/.test(v) ? undefined : bad();
      case ScalarType.DOUBLE:
      case ScalarType.FLOAT: {
        if (typeof v === "number" || (typeof v === "string" && (["NaN", "Infinity", "-Infinity"].includes(v) || (v.trim() !== "" && Number.isFinite(Number(v)))))) {
          if (type === ScalarType.FLOAT && Math.abs(Number(v)) > 3.4028234663852886e38 && Number.isFinite(Number(v))) {
            return this.report(at, node, "out of range for a float");
          }
          return;
        }
        return bad();
      }
      default: {
        // Integers: a JSON number without fraction, or a decimal string.
        let n: bigint;
        if (typeof v === "number" && Number.isInteger(v)) n = BigInt(v);
        else if (typeof v === "string" && /^-?\d+$/.test(v)) n = BigInt(v);
        else return bad();
        const [min, max] = intRange(type);
        if (n < min || n > max) this.report(at, node, `out of range for a ${scalarName(type)} (${min}..${max})`);
      }
    }
  }

  // ---- pass 3: protoc-gen-validate rules on the decoded message ------------

  checkMessage(msg: ReflectMessage, node: unknown, at: Seg[]): void {
    if (this.schema.messageOff.some((ext) => hasOption(msg.desc, ext) && getOption(msg.desc, ext) === true)) return;
    for (const oneof of msg.oneofs) {
      if (hasOption(oneof, this.schema.oneofRequired) && getOption(oneof, this.schema.oneofRequired) === true && !msg.oneofCase(oneof)) {
        this.report(at, node, `one of ${oneof.fields.map((f) => f.name).join(", ")} is required (oneof ${oneof.name})`);
      }
    }
    for (const field of msg.fields) {
      const child = this.child(node, field);
      const here = [...at, child.key];
      const rules = hasOption(field, this.schema.rules) ? (getOption(field, this.schema.rules) as Message) : undefined;
      const set = msg.isSet(field);
      if (rules) this.applyFieldRules(field, reflect(this.schema.rules.message!, rules), msg, set, child.node ?? node, here, child.node === undefined);
      else if (set) this.descend(field, msg, child.node, here);
    }
  }

  /** Checks nested messages (list items, map values, unpacked Any). */
  private descend(field: DescField, msg: ReflectMessage, node: unknown, at: Seg[], skip = false): void {
    if (skip) return;
    if (field.fieldKind === "message") this.checkNested(msg.get(field) as ReflectMessage, node, at);
    else if (field.fieldKind === "list" && field.listKind === "message") {
      let i = 0;
      for (const item of msg.get(field) as Iterable<ReflectMessage>) {
        this.checkNested(item, this.item(node, i), [...at, i]);
        i++;
      }
    } else if (field.fieldKind === "map" && field.mapKind === "message") {
      for (const [k, v] of msg.get(field) as ReadonlyMap<unknown, ReflectMessage>) {
        this.checkNested(v, this.entry(node, String(k)), [...at, String(k)]);
      }
    }
  }

  private checkNested(msg: ReflectMessage, node: unknown, at: Seg[]): void {
    const name = msg.desc.typeName;
    if (name === "google.protobuf.Any") {
      const inner = anyUnpack(msg.message as Any, this.schema.registry);
      if (inner) {
        const desc = this.schema.registry.getMessage(inner.$typeName)!;
        const special = desc.typeName === "google.protobuf.Any" || WRAPPERS.has(desc.typeName) || isSpecialJson(desc.typeName);
        this.checkMessage(reflect(desc, inner), special ? this.entry(node, "value") : node, special ? [...at, "value"] : at);
      }
      return;
    }
    if (name.startsWith("google.protobuf.")) return; // no rules inside well-known types
    this.checkMessage(msg, node, at);
  }

  private applyFieldRules(field: DescField, rules: ReflectMessage, msg: ReflectMessage, set: boolean, node: unknown, at: Seg[], absent: boolean): void {
    const r = values(rules);
    const messageRules = r.get("message") as ReflectMessage | undefined;
    const mr = messageRules ? values(messageRules) : new Map<string, unknown>();
    const typeCase = rules.oneofCase(rules.oneofs[0]!)?.name;
    const typeRules = typeCase ? values(r.get(typeCase) as ReflectMessage) : new Map<string, unknown>();
    const report = (message: string) => this.report(at, node, message);

    // Rules on a oneof member apply only when that member is the one set.
    if (field.oneof && msg.oneofCase(field.oneof) !== field) return;
    if (mr.get("required") === true && !set) return report(absent ? "is required" : "is required (must not be empty)");

    if (field.fieldKind === "list") {
      const list = [...(msg.get(field) as Iterable<unknown>)];
      if (typeCase === "repeated" && !(typeRules.get("ignore_empty") === true && list.length === 0)) {
        const min = typeRules.get("min_items");
        const max = typeRules.get("max_items");
        if (min !== undefined && list.length < Number(min)) report(`must have at least ${min} item${Number(min) === 1 ? "" : "s"}`);
        if (max !== undefined && list.length > Number(max)) report(`must have at most ${max} items`);
        if (typeRules.get("unique") === true && new Set(list.map(keyOf)).size !== list.length) report("items must be unique");
        const items = typeRules.get("items") as ReflectMessage | undefined;
        if (items) list.forEach((item, i) => this.applyElementRules(items, item, field.listKind === "enum" ? field.enum : undefined, this.item(node, i), [...at, i]));
      }
      if (mr.get("skip") !== true) this.descend(field, msg, node, at);
      return;
    }
    if (field.fieldKind === "map") {
      const map = msg.get(field) as ReadonlyMap<unknown, unknown>;
      if (typeCase === "map" && !(typeRules.get("ignore_empty") === true && map.size === 0)) {
        const min = typeRules.get("min_pairs");
        const max = typeRules.get("max_pairs");
        if (min !== undefined && map.size < Number(min)) report(`must have at least ${min} entr${Number(min) === 1 ? "y" : "ies"}`);
        if (max !== undefined && map.size > Number(max)) report(`must have at most ${max} entries`);
        const keyRules = typeRules.get("keys") as ReflectMessage | undefined;
        const valueRules = typeRules.get("values") as ReflectMessage | undefined;
        for (const [k, v] of map) {
          const here = [...at, String(k)];
          if (keyRules) this.applyElementRules(keyRules, k, undefined, this.entry(node, String(k)), here, "key ");
          if (valueRules) this.applyElementRules(valueRules, v, field.mapKind === "enum" ? field.enum : undefined, this.entry(node, String(k)), here);
        }
      }
      if (mr.get("skip") !== true) this.descend(field, msg, node, at);
      return;
    }
    if (field.fieldKind === "message") {
      const value = msg.get(field) as ReflectMessage;
      if (typeCase && ["any", "duration", "timestamp"].includes(typeCase) && typeRules.get("required") === true && !set) return report("is required");
      if (set && typeCase) this.checkTyped(typeCase, typeRules, value, at, node);
      if (set && mr.get("skip") !== true) this.checkNested(value, node, at);
      return;
    }
    // Scalars and enums. Rules apply to the value even when it is the
    // default, unless the field tracks presence (proto3 optional).
    if (field.proto.proto3Optional && !set) return;
    if (typeCase) this.checkTyped(typeCase, typeRules, msg.get(field), at, node, field.fieldKind === "enum" ? field.enum : undefined);
  }

  /** `items` of repeated rules, `keys`/`values` of map rules: FieldRules for one element. */
  private applyElementRules(rules: ReflectMessage, value: unknown, enumDesc: DescEnum | undefined, node: unknown, at: Seg[], prefix = ""): void {
    const typeCase = rules.oneofCase(rules.oneofs[0]!)?.name;
    if (typeCase) this.checkTyped(typeCase, values(values(rules).get(typeCase) as ReflectMessage), value, at, node, enumDesc, prefix);
  }

  /** One `validate.*Rules` message against one value. */
  private checkTyped(kind: string, r: Map<string, unknown>, value: unknown, at: Seg[], node: unknown, enumDesc?: DescEnum, prefix = ""): void {
    const report = (message: string) => this.report(at, node, prefix + message);
    // Wrappers (UInt32Value, ...) carry their rules on the inner value.
    if (isReflectMessage(value) && WRAPPERS.has(value.desc.typeName)) value = value.get(value.desc.fields[0]!);
    switch (kind) {
      case "string": {
        const s = value as string;
        if (r.get("ignore_empty") === true && s === "") return;
        return this.checkString(r, s, report);
      }
      case "bytes": {
        const b = value as Uint8Array;
        if (r.get("ignore_empty") === true && b.length === 0) return;
        checkLength(r, b.length, "len", "min_len", "max_len", "byte", report);
        return;
      }
      case "bool":
        if (r.has("const") && value !== r.get("const")) report(`must be ${String(r.get("const"))}`);
        return;
      case "enum": {
        const n = value as number;
        if (r.has("const") && n !== r.get("const")) report(`must be ${enumName(enumDesc, r.get("const") as number)}`);
        if (r.get("defined_only") === true && enumDesc && !enumDesc.values.some((x) => x.number === n)) report(`must be a defined value of enum ${enumDesc.typeName}, got ${n}`);
        checkInNotIn(r, n, (x) => enumName(enumDesc, x as number), report);
        return;
      }
      case "duration": {
        const d = value as ReflectMessage;
        const toNanos = (m: ReflectMessage) => BigInt(m.get(m.desc.fields[0]!) as bigint) * 1_000_000_000n + BigInt(m.get(m.desc.fields[1]!) as number);
        const rules = new Map<string, unknown>();
        for (const [k, v] of r) {
          if (k === "in" || k === "not_in") rules.set(k, (v as ReflectMessage[]).map(toNanos));
          else if (isReflectMessage(v)) rules.set(k, toNanos(v));
          else rules.set(k, v);
        }
        checkNumeric(rules, toNanos(d), formatNanos, report);
        return;
      }
      case "timestamp": {
        const t = value as ReflectMessage;
        const toNanos = (m: ReflectMessage) => BigInt(m.get(m.desc.fields[0]!) as bigint) * 1_000_000_000n + BigInt(m.get(m.desc.fields[1]!) as number);
        const rules = new Map<string, unknown>();
        for (const [k, v] of r) if (isReflectMessage(v)) rules.set(k, toNanos(v));
        checkNumeric(rules, toNanos(t), (n) => new Date(Number(n / 1_000_000n)).toISOString(), report);
        return;
      }
      case "any": {
        const a = value as ReflectMessage;
        const url = a.get(a.desc.fields[0]!) as string;
        const allowed = r.get("in") as string[] | undefined;
        const denied = r.get("not_in") as string[] | undefined;
        if (allowed && allowed.length > 0 && !allowed.includes(url)) report(`type must be one of ${allowed.join(", ")}`);
        if (denied?.includes(url)) report(`type must not be ${url}`);
        return;
      }
      case "message":
      case "repeated":
      case "map":
        return; // handled by the caller
      default: {
        // Numbers: float, double, (s|u)int32/64, (s)fixed32/64.
        if (r.get("ignore_empty") === true && Number(value) === 0) return;
        const big = typeof value === "bigint" || /int|fixed/.test(kind);
        const norm = (x: unknown) => (big ? BigInt(x as number | bigint) : Number(x));
        const rules = new Map<string, unknown>();
        for (const [k, v] of r) rules.set(k, Array.isArray(v) ? v.map(norm) : typeof v === "boolean" ? v : norm(v));
        checkNumeric(rules, norm(value), String, report);
      }
    }
  }

  private checkString(r: Map<string, unknown>, s: string, report: (m: string) => void): void {
    const chars = [...s].length;
    const bytes = Buffer.byteLength(s);
    if (r.has("const") && s !== r.get("const")) report(`must be ${JSON.stringify(r.get("const"))}`);
    checkLength(r, chars, "len", "min_len", "max_len", "character", report);
    checkLength(r, bytes, "len_bytes", "min_bytes", "max_bytes", "byte", report);
    const pattern = r.get("pattern") as string | undefined;
    if (pattern !== undefined) {
      const re = compileRe2(pattern);
      if (re && !re.test(s)) report(`must match the pattern ${pattern}`);
    }
    if (r.has("prefix") && !s.startsWith(r.get("prefix") as string)) report(`must start with ${JSON.stringify(r.get("prefix"))}`);
    if (r.has("suffix") && !s.endsWith(r.get("suffix") as string)) report(`must end with ${JSON.stringify(r.get("suffix"))}`);
    if (r.has("contains") && !s.includes(r.get("contains") as string)) report(`must contain ${JSON.stringify(r.get("contains"))}`);
    if (r.has("not_contains") && s.includes(r.get("not_contains") as string)) report(`must not contain ${JSON.stringify(r.get("not_contains"))}`);
    checkInNotIn(r, s, (x) => JSON.stringify(x), report);
    // Well-known formats (the ones Envoy's API uses).
    if (r.get("ip") === true && isIP(s) === 0) report("must be an IP address");
    if (r.get("ipv4") === true && isIP(s) !== 4) report("must be an IPv4 address");
    if (r.get("ipv6") === true && isIP(s) !== 6) report("must be an IPv6 address");
    if (r.get("hostname") === true && !isHostname(s)) report("must be a hostname");
    if (r.get("address") === true && isIP(s) === 0 && !isHostname(s)) report("must be an IP address or a hostname");
    const wkr = r.get("well_known_regex") as number | undefined;
    if (wkr !== undefined && wkr !== 0) {
      const strict = r.get("strict") !== false;
      // protoc-gen-validate's definitions (1 = HTTP_HEADER_NAME, 2 = HTTP_HEADER_VALUE).
      const re =
        wkr === 1
          ? strict
            ? /^:?[0-9a-zA-Z!#$%&'*+\-.^_|~`]+$/
            : /^[^\u0000\n\r]*$/
          : strict
            ? /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/
            : /^[^\u0000\n\r]*$/;
      if (!re.test(s)) report(wkr === 1 ? "must be a valid HTTP header name" : "must be a valid HTTP header value");
    }
  }

  // ---- YAML nodes and paths -------------------------------------------------

  /** Follows aliases; plain values (set programmatically, e.g. by doc.setIn) become nodes. */
  private deref(node: unknown): YamlNode | undefined {
    let n = node;
    for (let i = 0; i < 100 && isAlias(n); i++) n = n.resolve(this.doc);
    if (n === undefined || isNode(n)) return n as YamlNode | undefined;
    return this.doc.createNode(n) as YamlNode;
  }

  /** The YAML node of a field (by proto name or JSON name) and the key used. */
  private child(node: unknown, field: DescField): { node?: YamlNode; key: string } {
    const n = this.deref(node);
    if (isMap(n)) {
      for (const key of [field.name, field.jsonName]) {
        const value = n.get(key, true);
        if (value !== undefined) return { node: this.deref(value), key };
      }
    }
    return { key: field.name };
  }

  private item(node: unknown, i: number): YamlNode | undefined {
    const n = this.deref(node);
    return isSeq(n) ? this.deref(n.items[i]) : undefined;
  }

  private entry(node: unknown, key: string): YamlNode | undefined {
    const n = this.deref(node);
    return isMap(n) ? this.deref(n.get(key, true)) : undefined;
  }

  private report(at: Seg[], node: unknown, message: string): void {
    const range = (node as { range?: [number, number, number] } | undefined)?.range;
    const line = range && this.lines ? this.lines.linePos(range[0]).line : undefined;
    this.issues.push({ path: formatPath(at), message, ...(line ? { line } : {}) });
  }
}

export function formatPath(at: readonly Seg[]): string {
  let out = "";
  for (const seg of at) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_@][A-Za-z0-9_]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

// ---------------------------------------------------------------------------
// helpers

/** The set fields of a rules message, by proto name (lists as arrays). */
function values(r: ReflectMessage): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const f of r.fields) {
    if (!r.isSet(f)) continue;
    const v = r.get(f);
    out.set(f.name, f.fieldKind === "list" ? [...(v as Iterable<unknown>)] : v);
  }
  return out;
}

function checkNumeric<T extends number | bigint>(r: Map<string, unknown>, v: T, fmt: (x: T) => string, report: (m: string) => void): void {
  const get = (k: string) => r.get(k) as T | undefined;
  if (r.has("const") && v !== get("const")) report(`must be ${fmt(get("const")!)}`);
  const lt = get("lt");
  const lte = get("lte");
  const gt = get("gt");
  const gte = get("gte");
  const upper = lt !== undefined ? { ok: v < lt, text: `< ${fmt(lt)}`, at: lt } : lte !== undefined ? { ok: v <= lte, text: `<= ${fmt(lte)}`, at: lte } : undefined;
  const lower = gt !== undefined ? { ok: v > gt, text: `> ${fmt(gt)}`, at: gt } : gte !== undefined ? { ok: v >= gte, text: `>= ${fmt(gte)}`, at: gte } : undefined;
  if (upper && lower && upper.at < lower.at) {
    // protoc-gen-validate: an upper bound below the lower one means "outside the range".
    if (!upper.ok && !lower.ok) report(`must be ${upper.text} or ${lower.text}`);
  } else {
    if (lower && !lower.ok) report(`must be ${lower.text}`);
    if (upper && !upper.ok) report(`must be ${upper.text}`);
  }
  checkInNotIn(r, v, (x) => fmt(x as T), report);
}

function checkInNotIn(r: Map<string, unknown>, v: unknown, fmt: (x: unknown) => string, report: (m: string) => void): void {
  const allowed = r.get("in") as unknown[] | undefined;
  const denied = r.get("not_in") as unknown[] | undefined;
  if (allowed && allowed.length > 0 && !allowed.includes(v)) report(`must be one of ${allowed.map(fmt).join(", ")}`);
  if (denied?.includes(v)) report(`must not be ${fmt(v)}`);
}

function checkLength(r: Map<string, unknown>, n: number, exact: string, min: string, max: string, unit: string, report: (m: string) => void): void {
  const plural = (x: unknown) => `${x} ${unit}${Number(x) === 1 ? "" : "s"}`;
  if (r.has(exact) && n !== Number(r.get(exact))) report(`must be exactly ${plural(r.get(exact))} long`);
  if (r.has(min) && n < Number(r.get(min))) report(Number(r.get(min)) === 1 && n === 0 ? "must not be empty" : `must be at least ${plural(r.get(min))} long`);
  if (r.has(max) && n > Number(r.get(max))) report(`must be at most ${plural(r.get(max))} long`);
}

/** RE2 as JavaScript, where the syntax agrees; undefined (not checked) where not. */
function compileRe2(pattern: string): RegExp | undefined {
  try {
    return new RegExp(pattern, "u");
  } catch {
    return undefined;
  }
}

function isHostname(s: string): boolean {
  return s.length <= 253 && s.split(".").every((l) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l));
}

function isSpecialJson(typeName: string): boolean {
  return ["Duration", "Timestamp", "FieldMask", "Struct", "ListValue", "Value"].some((t) => typeName === `google.protobuf.${t}`);
}

function enumName(desc: DescEnum | undefined, n: number): string {
  return desc?.values.find((x) => x.number === n)?.name ?? String(n);
}

function formatNanos(n: bigint): string {
  const s = Number(n) / 1e9;
  return `${s}s`;
}

function keyOf(v: unknown): unknown {
  return isReflectMessage(v) ? JSON.stringify(v.message, (_k, x) => (typeof x === "bigint" ? String(x) : x)) : v;
}

function intRange(type: ScalarType): [bigint, bigint] {
  switch (type) {
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return [-(2n ** 31n), 2n ** 31n - 1n];
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return [0n, 2n ** 32n - 1n];
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return [0n, 2n ** 64n - 1n];
    default:
      return [-(2n ** 63n), 2n ** 63n - 1n];
  }
}

function scalarName(type: ScalarType): string {
  return ScalarType[type]!.toLowerCase();
}

function isNull(node: unknown): boolean {
  return isScalar(node) && node.value === null;
}

function describe(node: unknown): string {
  if (node === undefined) return "nothing";
  if (isMap(node)) return "a mapping";
  if (isSeq(node)) return "a list";
  if (isScalar(node)) {
    const v = node.value;
    if (v === null) return "null";
    if (typeof v === "string") return `the string ${JSON.stringify(v)}`;
    return `${typeof v} ${String(v)}`;
  }
  return "an unsupported YAML node";
}

/** The closest name, for "did you mean" hints (edit distance up to 3). */
function suggest(name: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 4;
  for (const c of candidates) {
    const d = editDistance(name, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}
