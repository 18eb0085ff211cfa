import { create, createRegistry, fromBinary, toJson, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { anyPack, AnySchema, type Any } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { file_google_rpc_error_details } from "../gen/google/rpc/error_details_pb.js";

/**
 * HTTP status of a REST response for a gRPC code, as Google's HTTP/JSON
 * transcoding maps them (google.rpc.Code docs; Envoy's transcoder agrees).
 */
export function httpStatusFromCode(code: Code): number {
  switch (code) {
    case Code.InvalidArgument:
    case Code.FailedPrecondition:
    case Code.OutOfRange:
      return 400;
    case Code.Unauthenticated:
      return 401;
    case Code.PermissionDenied:
      return 403;
    case Code.NotFound:
      return 404;
    case Code.AlreadyExists:
    case Code.Aborted:
      return 409;
    case Code.ResourceExhausted:
      return 429;
    case Code.Canceled:
      return 499;
    case Code.Unimplemented:
      return 501;
    case Code.Unavailable:
      return 503;
    case Code.DeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

// Error details the gateway can render as JSON; anything else keeps its
// bytes (base64) under its type URL, so no detail is dropped.
const detailTypes = createRegistry(file_google_rpc_error_details);

/**
 * A google.rpc.Status as JSON, the error body of Google's REST APIs:
 * `{"code": 5, "message": "...", "details": [{"@type": "...", ...}]}`.
 */
export function errorJson(error: ConnectError): JsonObject {
  return { code: error.code, message: error.rawMessage, details: error.details.map(detailJson) };
}

function detailJson(detail: ConnectError["details"][number]): JsonValue {
  let any: Any;
  if ("desc" in detail) {
    any = anyPack(detail.desc, create(detail.desc, detail.value)); // made here (the gateway's own errors)
  } else {
    const desc = detailTypes.getMessage(detail.type);
    if (!desc) return { "@type": `type.googleapis.com/${detail.type}`, value: Buffer.from(detail.value).toString("base64") };
    any = anyPack(desc, fromBinary(desc, detail.value));
  }
  // "@type" first, as Google's APIs print it.
  const { "@type": type = null, ...fields } = toJson(AnySchema, any, { registry: detailTypes }) as JsonObject;
  return { "@type": type, ...fields };
}

/** A ConnectError with only what crosses the edge: code, message, details (no upstream metadata). */
export function cleanError(error: ConnectError, message = error.rawMessage): ConnectError {
  const clean = new ConnectError(message, error.code, undefined, undefined, error);
  clean.details = error.details;
  return clean;
}
