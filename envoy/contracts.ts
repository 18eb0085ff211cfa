// The contracts as the edge sees them: services, methods, their gRPC paths,
// idempotency and google.api.http bindings, read from proto/ with buf (the
// same build that produces envoy/myevents.pb), so the edge is always checked
// against the current protos, not against generated code that may lag.
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { createFileRegistry, fromBinary, getOption, hasOption, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema, MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { http } from "../gen/google/api/annotations_pb.js";
import type { HttpRule } from "../gen/google/api/http_pb.js";

const run = promisify(execFile);

/** The package whose services the edge exposes. */
export const CONTRACT_PACKAGE = "myevents.v1";

export interface HttpBinding {
  /** GET, POST, PUT, PATCH, DELETE, or a custom verb's kind. */
  method: string;
  /** Path template, e.g. /v1/events/{id}:cancel */
  path: string;
  /** Request field mapped to the body: "" (none), "*" (all) or a field name. */
  body: string;
  responseBody: string;
}

export interface ContractMethod {
  service: string;
  name: string;
  /** Full name, e.g. myevents.v1.EventService.GetEvent */
  fullName: string;
  /** The gRPC request path, e.g. /myevents.v1.EventService/GetEvent */
  grpcPath: string;
  /** idempotency_level = NO_SIDE_EFFECTS (read-only: safe to retry, Connect GET). */
  readOnly: boolean;
  kind: "unary" | "server_streaming" | "client_streaming" | "bidi_streaming";
  http: HttpBinding[];
}

export interface Contracts {
  registry: FileRegistry;
  services: { name: string; methods: ContractMethod[] }[];
}

/**
 * The FileDescriptorSet of proto/ with its imports and without source info:
 * exactly what envoy/build-descriptor.sh writes to envoy/myevents.pb.
 */
export async function buildContractsDescriptor(root: string): Promise<Uint8Array> {
  const dir = await mkdtemp(path.join(tmpdir(), "myevents-pb-"));
  try {
    const out = path.join(dir, "myevents.pb");
    await run(path.join(root, "node_modules", ".bin", "buf"), ["build", "proto", "--as-file-descriptor-set", "--exclude-source-info", "-o", `${out}#format=binpb`], { cwd: root });
    return await readFile(out);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function loadContracts(root: string): Promise<Contracts> {
  const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, await buildContractsDescriptor(root)));
  const services: Contracts["services"] = [];
  for (const file of registry.files) {
    if (file.proto.package !== CONTRACT_PACKAGE) continue;
    for (const service of file.services) {
      services.push({
        name: service.typeName,
        methods: service.methods.map((m) => ({
          service: service.typeName,
          name: m.name,
          fullName: `${service.typeName}.${m.name}`,
          grpcPath: `/${service.typeName}/${m.name}`,
          readOnly: m.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS,
          kind: m.methodKind,
          http: hasOption(m, http) ? bindings(getOption(m, http)) : [],
        })),
      });
    }
  }
  return { registry, services };
}

/** A rule and its additional_bindings, flattened. */
function bindings(rule: HttpRule): HttpBinding[] {
  const p = rule.pattern;
  let own: HttpBinding[] = [];
  if (p.case === "custom") own = [{ method: p.value.kind.toUpperCase(), path: p.value.path, body: rule.body, responseBody: rule.responseBody }];
  else if (p.case !== undefined) own = [{ method: p.case.toUpperCase(), path: p.value, body: rule.body, responseBody: rule.responseBody }];
  return [...own, ...rule.additionalBindings.flatMap(bindings)];
}
