// What the fuzzer found, pinned as plain tests: each failed before its fix.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toBinary } from "@bufbuild/protobuf";
import { base64Encode } from "@bufbuild/protobuf/wire";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { EventService, GetEventRequestSchema } from "../../gen/myevents/v1/event_service_pb.js";
import { startServices } from "../../gateway/test-support.js";
import { callerHeaders } from "./requests.js";
import { RawClient, envelope } from "./wire.js";

let services: Awaited<ReturnType<typeof startServices>>;
let raw: RawClient;
beforeAll(async () => {
  services = await startServices();
  raw = new RawClient(services.eventsUrl);
});
afterAll(async () => {
  raw?.close();
  await services?.stop();
});

const path = "/myevents.v1.EventService/GetEvent";
const truncated = toBinary(GetEventRequestSchema, { $typeName: "myevents.v1.GetEventRequest", id: "abc" }).subarray(0, 3);

describe("hostile input the fuzzer found", () => {
  it("answers InvalidArgument, not Internal, for protobuf binary that does not decode, in every protocol", async () => {
    const grpc = { "content-type": "application/grpc", te: "trailers" };
    const sends = {
      grpc: raw.send({ protocol: "grpc", httpMethod: "POST", path, headers: grpc, body: envelope(truncated) }),
      "grpc, invalid UTF-8": raw.send({ protocol: "grpc", httpMethod: "POST", path, headers: grpc, body: envelope(Uint8Array.of(0x0a, 2, 0xc0, 0x80)) }),
      "grpc, compressed flag without encoding": raw.send({ protocol: "grpc", httpMethod: "POST", path, headers: grpc, body: envelope(Uint8Array.of(0x0a, 1, 0x41), 1) }),
      "grpc-web": raw.send({ protocol: "grpc-web", httpMethod: "POST", path, headers: { "content-type": "application/grpc-web+proto" }, body: envelope(truncated) }),
      "connect binary": raw.send({ protocol: "connect-proto", httpMethod: "POST", path, headers: { "content-type": "application/proto" }, body: truncated }),
      "connect binary, with Content-Length": raw.send({ protocol: "connect-proto", httpMethod: "POST", path, headers: { "content-type": "application/proto", "content-length": String(truncated.length) }, body: truncated }),
      "connect GET, not gzip": raw.send({ protocol: "connect-get", httpMethod: "GET", path: `${path}?connect=v1&encoding=proto&base64=1&compression=gzip&message=DA`, headers: {}, body: new Uint8Array() }),
      "connect GET, JSON, not gzip": raw.send({ protocol: "connect-get", httpMethod: "GET", path: `${path}?connect=v1&encoding=json&compression=gzip&message=%25`, headers: {}, body: new Uint8Array() }),
      "connect JSON, not gzip": raw.send({ protocol: "connect-json", httpMethod: "POST", path, headers: { "content-type": "application/json", "content-encoding": "gzip" }, body: Buffer.from("[") }),
      "connect GET": raw.send({ protocol: "connect-get", httpMethod: "GET", path: `${path}?connect=v1&encoding=proto&base64=1&message=${base64Encode(truncated, "url")}`, headers: {}, body: new Uint8Array() }),
    };
    // The message says what is wrong with the bytes (not, say, "protocol error: promised 3 bytes").
    const says: Record<keyof typeof sends, RegExp> = {
      grpc: /not a valid myevents\.v1\.GetEventRequest/,
      "grpc, invalid UTF-8": /not a valid myevents\.v1\.GetEventRequest/,
      "grpc, compressed flag without encoding": /flagged compressed/,
      "grpc-web": /not a valid myevents\.v1\.GetEventRequest/,
      "connect binary": /not a valid myevents\.v1\.GetEventRequest/,
      "connect binary, with Content-Length": /not a valid myevents\.v1\.GetEventRequest/,
      "connect GET, not gzip": /not valid gzip/,
      "connect GET, JSON, not gzip": /not valid gzip/,
      "connect JSON, not gzip": /not valid gzip/,
      "connect GET": /not a valid myevents\.v1\.GetEventRequest/,
    };
    for (const [name, sent] of Object.entries(sends)) {
      const { outcome, detail } = await sent;
      expect({ name, outcome, detail: decodeURIComponent(detail) }).toEqual({ name, outcome: "InvalidArgument", detail: expect.stringMatching(says[name as keyof typeof sends]) });
    }
  });

  it("rejects strings that are not valid Unicode (a lone surrogate in JSON) while decoding", async () => {
    const res = await raw.send({ protocol: "connect-json", httpMethod: "POST", path, headers: { "content-type": "application/json" }, body: Buffer.from('{"id":"ab\\ud800"}') });
    expect(res.outcome).toBe("InvalidArgument");
    expect(JSON.parse(res.detail).message).toMatch(/GetEventRequest\.id from JSON: .*invalid UTF8/);
  });

  it("keeps an HTTP/2 connection alive when a request breaks hundreds of rules (trailers stay small)", async () => {
    const events = createClient(EventService, createGrpcTransport({ baseUrl: services.eventsUrl }));
    const halls = Array.from({ length: 200 }, () => ({ name: " ", capacity: 0 }));
    const err = await events.createLocation({ location: { name: "x", country: "DE", halls } }, { headers: callerHeaders() }).catch((e: unknown) => ConnectError.from(e));
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    expect((err as ConnectError).findDetails(BadRequestSchema)[0]?.fieldViolations).toHaveLength(20);
    expect((err as ConnectError).rawMessage).toMatch(/; and \d+ more$/);
    // The same connection still answers.
    expect(await events.listLocations({}).then(() => "ok")).toBe("ok");
  });
});
