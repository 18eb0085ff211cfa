// Rendering and checking the Kubernetes manifests of deploy/k8s offline:
// kustomize renders them as `kubectl apply -k` would, then every object is
// validated twice against the Kubernetes API schema:
//  - kubernetes-models (JSON schemas of the Kubernetes OpenAPI, compiled with
//    ajv): required fields, types, formats such as quantities and
//    int-or-string;
//  - kubernetes-types (TypeScript declarations of the same API), by type
//    checking each object as an object literal: TypeScript's excess property
//    check catches unknown fields (a misspelt "readinesProbe" would otherwise
//    be dropped silently by the API server) that the JSON schemas allow.
import path from "node:path";
import ts from "typescript";
import { parseAllDocuments } from "yaml";
import { root, run, tool } from "./tools.js";

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

/** `kustomize build dir`, parsed. */
export function kustomizeBuild(dir: string): K8sObject[] {
  const out = run(tool("kustomize"), ["build", path.join(root, dir)]);
  return parseAllDocuments(out).map((d) => d.toJS() as K8sObject);
}

export const describeObject = (o: K8sObject) => `${o.kind}/${o.metadata.name}`;

/** "apps/v1" -> ["apps", "v1"]; "v1" -> ["", "v1"]. */
function groupVersion(apiVersion: string): [string, string] {
  const parts = apiVersion.split("/");
  return parts.length === 1 ? ["", parts[0]!] : [parts[0]!, parts[1]!];
}

interface Model {
  validate(): void;
}

/** Validates against kubernetes-models' JSON schema; returns the problems (empty when valid). */
export async function schemaProblems(o: K8sObject): Promise<string[]> {
  const [group, version] = groupVersion(o.apiVersion);
  const specifier = `kubernetes-models/${group ? `${group}/` : ""}${version}`;
  const module = (await import(/* @vite-ignore */ specifier)) as Record<string, new (data: unknown) => Model>;
  const Kind = module[o.kind];
  if (!Kind) return [`${describeObject(o)}: no schema for ${o.apiVersion} ${o.kind}`];
  // kustomize writes binaryData as wrapped base64; the API server's decoder
  // (Go's encoding/base64) skips the line breaks, the schema's "byte" format does not.
  const binaryData = o.binaryData as Record<string, string> | undefined;
  const data = binaryData ? { ...o, binaryData: Object.fromEntries(Object.entries(binaryData).map(([k, v]) => [k, v.replace(/[\r\n]/g, "")])) } : o;
  try {
    new Kind(data).validate();
    return [];
  } catch (err) {
    return [`${describeObject(o)}: ${(err as Error).message}`];
  }
}

/**
 * Type-checks every object against kubernetes-types; returns the problems,
 * each naming the object, e.g. `Deployment/events: Object literal may only
 * specify known properties, and 'readinesProbe' does not exist in type 'Container'.`
 */
export function typeProblems(objects: K8sObject[]): string[] {
  // A virtual file beside this one, so that module resolution finds node_modules.
  const file = path.join(root, "test", "deploy", "__manifests__.ts");
  const imports = new Map<string, string>();
  const decls = objects.map((o, i) => {
    const [group, version] = groupVersion(o.apiVersion);
    const module = `kubernetes-types/${group === "" ? "core" : group.split(".")[0]}/${version}`;
    if (!imports.has(module)) imports.set(module, `m${imports.size}`);
    return `export const o${i}: ${imports.get(module)}.${o.kind} = ${JSON.stringify(o, null, 1)};\n`;
  });
  const header = [...imports].map(([module, alias]) => `import type * as ${alias} from "${module}";\n`).join("");
  const text = header + decls.join("");
  const starts = decls.map((_, i) => header.length + decls.slice(0, i).join("").length);

  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, ...rest) => (path.resolve(name) === file ? ts.createSourceFile(name, text, language) : getSourceFile(name, language, ...rest));
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => path.resolve(name) === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, "\n");
    if (d.file === undefined || d.start === undefined || path.resolve(d.file.fileName) !== file || d.start < starts[0]!) return message;
    let index = starts.length - 1;
    while (index > 0 && starts[index]! > d.start) index--;
    return `${describeObject(objects[index]!)}: ${message}`;
  });
}
