// gRPC server reflection (grpc.reflection.v1 and v1alpha), so grpcurl,
// Postman and friends can discover and call our services without .proto files.
//
// Register it next to the services it describes:
//
//   for (const r of reflectionServices([EventService, Health])) r.route(router);
//
// The reflection services list themselves, so they need not be passed.
import {
  create,
  createFileRegistry,
  fromBinary,
  toBinary,
  type DescFile,
  type DescMessage,
  type DescService,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { nestedTypes } from "@bufbuild/protobuf/reflect";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

type Request = v1.ServerReflectionRequest;
type Response = MessageInitShape<typeof v1.ServerReflectionResponseSchema>;

const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;

/** A service with its handlers; same shape as server.ts's ServiceRegistration. */
export interface ReflectionRegistration<S extends DescService = DescService> {
  desc: S;
  impl: ServiceImpl<S>;
  route(router: ConnectRouter): void;
}

/**
 * The two reflection services (v1 and v1alpha), describing `served` (and the
 * files they import) plus any `extraFiles`, e.g. files that only declare
 * extensions. Register with `r.route(router)` or `router.service(r.desc, r.impl)`.
 */
export function reflectionServices(
  served: readonly DescService[],
  extraFiles: readonly DescFile[] = [],
): [ReflectionRegistration<typeof v1.ServerReflection>, ReflectionRegistration<typeof v1alpha.ServerReflection>] {
  const answer = createAnswerer([...served, v1.ServerReflection, v1alpha.ServerReflection], extraFiles);
  return [
    registration(v1.ServerReflection, { serverReflectionInfo: (reqs) => mapStream(reqs, answer) }),
    // v1alpha's messages are field-for-field v1's: re-read the bytes, reuse the handler.
    registration(v1alpha.ServerReflection, {
      serverReflectionInfo: (reqs) =>
        mapStream(reqs, (req) => {
          const v1req = convert(v1alpha.ServerReflectionRequestSchema, v1.ServerReflectionRequestSchema, req);
          const v1res = create(v1.ServerReflectionResponseSchema, answer(v1req));
          return convert(v1.ServerReflectionResponseSchema, v1alpha.ServerReflectionResponseSchema, v1res);
        }),
    }),
  ];
}

function registration<S extends DescService>(desc: S, impl: ServiceImpl<S>): ReflectionRegistration<S> {
  return { desc, impl, route: (router) => router.service(desc, impl) };
}

/** Builds the per-request handler over an index of every reachable file. */
function createAnswerer(services: readonly DescService[], extraFiles: readonly DescFile[]) {
  const serviceNames = [...new Set(services.map((s) => s.typeName))];
  // Dependencies come first, which createFileRegistry needs to link the set.
  const files = withDeps([...services.map((s) => s.file), ...extraFiles]);
  const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: files.map((f) => f.proto) }));
  const symbols = symbolIndex(registry.files);

  const filesResponse = (file: DescFile): Response["messageResponse"] => ({
    case: "fileDescriptorResponse",
    // The file first, then everything it imports, so clients can link it.
    value: { fileDescriptorProto: withDeps([file]).reverse().map((f) => toBinary(FileDescriptorProtoSchema, f.proto)) },
  });
  const notFound = (what: string): Response["messageResponse"] => ({
    case: "errorResponse",
    value: { errorCode: NOT_FOUND, errorMessage: `${what} not found` },
  });

  const respond = (req: Request): Response["messageResponse"] => {
    const r = req.messageRequest;
    switch (r.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: serviceNames.map((name) => ({ name })) } };
      case "fileByFilename": {
        const file = registry.getFile(r.value);
        return file ? filesResponse(file) : notFound(`file ${r.value}`);
      }
      case "fileContainingSymbol": {
        const file = symbols.get(r.value.replace(/^\./, ""));
        return file ? filesResponse(file) : notFound(`symbol ${r.value}`);
      }
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = r.value;
        const extendee = registry.getMessage(containingType);
        const ext = extendee && registry.getExtensionFor(extendee, extensionNumber);
        return ext ? filesResponse(ext.file) : notFound(`extension ${extensionNumber} of ${containingType}`);
      }
      case "allExtensionNumbersOfType": {
        const extendee = registry.getMessage(r.value);
        if (!extendee) return notFound(`type ${r.value}`);
        const numbers = [...registry].flatMap((t) => (t.kind == "extension" && t.extendee === extendee ? [t.number] : []));
        return { case: "allExtensionNumbersResponse", value: { baseTypeName: r.value, extensionNumber: numbers } };
      }
      default:
        return { case: "errorResponse", value: { errorCode: INVALID_ARGUMENT, errorMessage: "empty reflection request" } };
    }
  };
  return (req: Request): Response => ({ validHost: req.host, originalRequest: req, messageResponse: respond(req) });
}

/** The given files and all they import, transitively, each after its imports. */
function withDeps(roots: readonly DescFile[]): DescFile[] {
  const out = new Map<string, DescFile>();
  const visit = (f: DescFile) => {
    if (out.has(f.name)) return;
    f.dependencies.forEach(visit);
    out.set(f.name, f);
  };
  roots.forEach(visit);
  return [...out.values()];
}

/**
 * Fully-qualified name → declaring file, for every symbol grpc reflection
 * clients may ask about: messages (nested too), enums and their values,
 * services, methods, fields, oneofs and extensions.
 */
function symbolIndex(files: Iterable<DescFile>): Map<string, DescFile> {
  const index = new Map<string, DescFile>();
  for (const file of files) {
    const add = (name: string) => index.set(name, file);
    for (const t of nestedTypes(file)) {
      add(t.typeName);
      switch (t.kind) {
        case "message":
          t.fields.forEach((f) => add(`${t.typeName}.${f.name}`));
          t.oneofs.forEach((o) => add(`${t.typeName}.${o.name}`));
          break;
        case "enum": {
          // Enum values are scoped to the enum's parent, as in C++.
          const scope = t.typeName.slice(0, t.typeName.length - t.name.length);
          t.values.forEach((v) => add(scope + v.name));
          break;
        }
        case "service":
          t.methods.forEach((m) => add(`${t.typeName}.${m.name}`));
          break;
      }
    }
  }
  return index;
}

/** Re-reads a message as another schema with the same wire format. */
function convert<A extends DescMessage, B extends DescMessage>(from: A, to: B, msg: MessageShape<A>): MessageShape<B> {
  return fromBinary(to, toBinary(from, msg));
}

/** One response per request, in order, for as long as the client keeps the stream open. */
async function* mapStream<I, O>(requests: AsyncIterable<I>, fn: (req: I) => O): AsyncIterable<O> {
  for await (const req of requests) yield fn(req);
}
