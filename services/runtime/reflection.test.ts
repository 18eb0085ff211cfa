import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, createFileRegistry, fromBinary, getExtension, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { createClient, type Client } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { Health } from "../../gen/health/v1/health_pb.js";
import { EventService } from "../../gen/myevents/v1/event_service_pb.js";
import { reflectionServices } from "./reflection.js";

/** Requests that can be pushed while the call is open, to test one long-lived stream. */
class Pipe<T> implements AsyncIterable<T> {
  private queue: T[] = [];
  private wake?: () => void;
  private closed = false;
  push(v: T) {
    this.queue.push(v);
    this.wake?.();
  }
  close() {
    this.closed = true;
    this.wake?.();
  }
  async *[Symbol.asyncIterator]() {
    for (;;) {
      if (this.queue.length) yield this.queue.shift()!;
      else if (this.closed) return;
      else await new Promise<void>((r) => (this.wake = r));
    }
  }
}

/** One ServerReflectionInfo stream; `ask` sends a request and awaits its answer. */
function openStream<Q, R>(call: (requests: AsyncIterable<Q>) => AsyncIterable<R>) {
  const requests = new Pipe<Q>();
  const responses = call(requests)[Symbol.asyncIterator]();
  return {
    async ask(req: Q) {
      requests.push(req);
      const next = await responses.next();
      if (next.done) throw new Error("stream ended early");
      return next.value;
    },
    close: () => requests.close(),
  };
}

let server: http2.Http2Server;
const sessions = new Set<http2.ServerHttp2Session>();
let v1Client: Client<typeof v1.ServerReflection>;
let v1alphaClient: Client<typeof v1alpha.ServerReflection>;

beforeAll(async () => {
  // No handlers needed: reflection only describes what is routed.
  const served: DescService[] = [EventService, Health];
  server = http2.createServer(
    connectNodeAdapter({
      routes: (router) => {
        served.forEach((s) => router.service(s, {}));
        reflectionServices(served).forEach((r) => r.route(router));
      },
    }),
  );
  // The client keeps its HTTP/2 session open; track sessions so afterAll can end them.
  server.on("session", (session) => sessions.add(session));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  // connect-node's gRPC transport always speaks HTTP/2.
  const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` });
  v1Client = createClient(v1.ServerReflection, transport);
  v1alphaClient = createClient(v1alpha.ServerReflection, transport);
});

afterAll(async () => {
  sessions.forEach((s) => s.destroy());
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Builds a registry from a file_descriptor_response, as grpcurl would. */
function registryFrom(res: { messageResponse: { case?: string; value?: unknown } }) {
  expect(res.messageResponse.case).toBe("fileDescriptorResponse");
  const { fileDescriptorProto } = res.messageResponse.value as { fileDescriptorProto: Uint8Array[] };
  const files = fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b));
  // The server sends the requested file first and every file before its
  // imports (as grpc-go does), so reversed they are dependency-first, as a
  // FileDescriptorSet needs.
  const registry = createFileRegistry(create(FileDescriptorSetSchema, { file: files.toReversed() }));
  return { names: files.map((f) => f.name), registry };
}

function expectEventServiceResolves(res: Parameters<typeof registryFrom>[0]) {
  const { registry } = registryFrom(res);
  const service = registry.getService("myevents.v1.EventService");
  expect(service).toBeDefined();
  for (const m of service!.methods) {
    expect(registry.getMessage(m.input.typeName)).toBeDefined();
    expect(registry.getMessage(m.output.typeName)).toBeDefined();
  }
  expect(registry.getMessage("google.protobuf.Timestamp")).toBeDefined();
  // The google.api.http option on GetEvent decodes with the served annotations.proto.
  const http = registry.getExtension("google.api.http")!;
  const getEvent = service!.methods.find((m) => m.name === "GetEvent")!;
  expect(getExtension(getEvent.proto.options!, http)).toMatchObject({ pattern: { case: "get", value: "/v1/events/{id}" } });
}

describe("grpc.reflection.v1", () => {
  it("lists served services and both reflection services", async () => {
    const s = openStream(v1Client.serverReflectionInfo);
    const res = await s.ask({ host: "localhost", messageRequest: { case: "listServices", value: "*" } });
    s.close();
    expect(res.validHost).toBe("localhost");
    expect(res.originalRequest?.messageRequest).toEqual({ case: "listServices", value: "*" });
    expect(res.messageResponse.case).toBe("listServicesResponse");
    const names = res.messageResponse.case === "listServicesResponse" ? res.messageResponse.value.service.map((x) => x.name) : [];
    expect(names.sort()).toEqual(
      [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "myevents.v1.EventService",
      ].sort(),
    );
  });

  it("answers file_containing_symbol for a service, a method and a message with the file and its imports", async () => {
    const s = openStream(v1Client.serverReflectionInfo);
    for (const symbol of ["myevents.v1.EventService", "myevents.v1.EventService.GetEvent"]) {
      const res = await s.ask({ messageRequest: { case: "fileContainingSymbol", value: symbol } });
      const { names } = registryFrom(res);
      // The requested file first, then its transitive imports.
      expect(names[0]).toBe("myevents/v1/event_service.proto");
      expect(names).toEqual(
        expect.arrayContaining([
          "buf/validate/validate.proto",
          "google/api/annotations.proto",
          "google/api/http.proto",
          "google/protobuf/descriptor.proto",
          "google/protobuf/timestamp.proto",
          "myevents/v1/event.proto",
          "myevents/v1/location.proto",
        ]),
      );
      expectEventServiceResolves(res);
    }
    const event = await s.ask({ messageRequest: { case: "fileContainingSymbol", value: "myevents.v1.Event" } });
    const { names, registry } = registryFrom(event);
    expect(names[0]).toBe("myevents/v1/event.proto");
    // Its imports: timestamps and the buf.validate rule options (with theirs).
    expect(names.slice(1).sort()).toEqual([
      "buf/validate/validate.proto",
      "google/protobuf/descriptor.proto",
      "google/protobuf/duration.proto",
      "google/protobuf/field_mask.proto",
      "google/protobuf/timestamp.proto",
    ]);
    expect(registry.getMessage("myevents.v1.Event")?.field.startTime?.message?.typeName).toBe("google.protobuf.Timestamp");
    s.close();
  });

  it("resolves fields, enums, enum values, nested types and well-known types", async () => {
    const s = openStream(v1Client.serverReflectionInfo);
    const fileOf = async (symbol: string) => {
      const res = await s.ask({ messageRequest: { case: "fileContainingSymbol", value: symbol } });
      return registryFrom(res).names[0];
    };
    expect(await fileOf("myevents.v1.Event.start_time")).toBe("myevents/v1/event.proto");
    expect(await fileOf("myevents.v1.EventState")).toBe("myevents/v1/event.proto");
    expect(await fileOf("myevents.v1.EVENT_STATE_CANCELLED")).toBe("myevents/v1/event.proto");
    expect(await fileOf("grpc.health.v1.HealthCheckResponse.ServingStatus")).toBe("health/v1/health.proto");
    expect(await fileOf("google.protobuf.Timestamp")).toBe("google/protobuf/timestamp.proto");
    s.close();
  });

  it("answers file_by_filename, including well-known types", async () => {
    const s = openStream(v1Client.serverReflectionInfo);
    const res = await s.ask({ messageRequest: { case: "fileByFilename", value: "myevents/v1/event_service.proto" } });
    expect(registryFrom(res).names[0]).toBe("myevents/v1/event_service.proto");
    expectEventServiceResolves(res);
    const ts = await s.ask({ messageRequest: { case: "fileByFilename", value: "google/protobuf/timestamp.proto" } });
    expect(registryFrom(ts).names).toEqual(["google/protobuf/timestamp.proto"]);
    s.close();
  });

  it("answers extension queries from the registry", async () => {
    const s = openStream(v1Client.serverReflectionInfo);
    const numbers = await s.ask({
      messageRequest: { case: "allExtensionNumbersOfType", value: "google.protobuf.MethodOptions" },
    });
    expect(numbers.messageResponse.case).toBe("allExtensionNumbersResponse");
    expect(numbers.messageResponse.value).toMatchObject({
      baseTypeName: "google.protobuf.MethodOptions",
      extensionNumber: [72295728],
    });
    const ext = await s.ask({
      messageRequest: {
        case: "fileContainingExtension",
        value: { containingType: "google.protobuf.MethodOptions", extensionNumber: 72295728 },
      },
    });
    expect(registryFrom(ext).names[0]).toBe("google/api/annotations.proto");
    const unknownExt = await s.ask({
      messageRequest: {
        case: "fileContainingExtension",
        value: { containingType: "google.protobuf.MethodOptions", extensionNumber: 1 },
      },
    });
    expect(unknownExt.messageResponse).toMatchObject({ case: "errorResponse", value: { errorCode: 5 } });
    const unknownType = await s.ask({ messageRequest: { case: "allExtensionNumbersOfType", value: "no.Such" } });
    expect(unknownType.messageResponse).toMatchObject({ case: "errorResponse", value: { errorCode: 5 } });
    s.close();
  });

  it("answers unknown names with NOT_FOUND and keeps the stream open", async () => {
    const s = openStream(v1Client.serverReflectionInfo);
    const missing = await s.ask({ messageRequest: { case: "fileContainingSymbol", value: "myevents.v1.Nope" } });
    expect(missing.messageResponse).toMatchObject({ case: "errorResponse", value: { errorCode: 5 } });
    expect(missing.messageResponse.case === "errorResponse" && missing.messageResponse.value.errorMessage).toContain(
      "myevents.v1.Nope",
    );
    const noFile = await s.ask({ messageRequest: { case: "fileByFilename", value: "nope.proto" } });
    expect(noFile.messageResponse).toMatchObject({ case: "errorResponse", value: { errorCode: 5 } });
    // Same stream, still answering.
    const ok = await s.ask({ messageRequest: { case: "fileContainingSymbol", value: "myevents.v1.EventService" } });
    expectEventServiceResolves(ok);
    s.close();
  });
});

describe("grpc.reflection.v1alpha", () => {
  it("serves the same answers", async () => {
    const s = openStream(v1alphaClient.serverReflectionInfo);
    const list = await s.ask({ host: "h", messageRequest: { case: "listServices", value: "" } });
    expect(list.$typeName).toBe("grpc.reflection.v1alpha.ServerReflectionResponse");
    expect(list.validHost).toBe("h");
    expect(list.originalRequest?.$typeName).toBe("grpc.reflection.v1alpha.ServerReflectionRequest");
    const names = list.messageResponse.case === "listServicesResponse" ? list.messageResponse.value.service.map((x) => x.name) : [];
    expect(names).toEqual(
      expect.arrayContaining(["myevents.v1.EventService", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"]),
    );
    const missing = await s.ask({ messageRequest: { case: "fileContainingSymbol", value: "myevents.v1.Nope" } });
    expect(missing.messageResponse).toMatchObject({ case: "errorResponse", value: { errorCode: 5 } });
    const ok = await s.ask({ messageRequest: { case: "fileContainingSymbol", value: "myevents.v1.EventService.GetEvent" } });
    expectEventServiceResolves(ok);
    s.close();
  });
});
