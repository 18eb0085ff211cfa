// Turns a method and a seed into one hostile RawRequest of a given protocol.
import { readFileSync } from "node:fs";
import type { DescMethod, Message } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { base64Encode } from "@bufbuild/protobuf/wire";
import { BROKEN_JSON, HOSTILE_JSON, HOSTILE_STRINGS, concat, hostileBody, type Random } from "./hostile.js";
import { envelope, type Protocol, type RawRequest } from "./wire.js";
import { testToken } from "../../services/runtime/auth/testing.js";

// Signed once: an admin token (mutating calls get past authorization, so
// their input is what is tested), and tokens that must be refused cleanly.
const ADMIN_TOKEN = await testToken("fuzzer", { admin: true });
const EXPIRED_TOKEN = await testToken("fuzzer", { admin: true, ttlSeconds: -3_600 });
const FOREIGN_TOKEN = await testToken("fuzzer", { admin: true, secret: "a-secret-that-no-service-under-test-knows" });

/** Headers that identify the caller on every request the fuzzer sends (an admin's bearer token). */
export function callerHeaders(): Record<string, string> {
  return { authorization: `Bearer ${ADMIN_TOKEN}` };
}

/** Header values that must never make a service fail: garbage credentials and limits. */
const HOSTILE_HEADERS: readonly Record<string, string>[] = [
  { authorization: "" },
  { authorization: "Bearer" },
  { authorization: "Bearer " },
  { authorization: "Bearer not.a.jwt" },
  { authorization: "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJyb290Iiwicm9sZXMiOlsiYWRtaW4iXX0." }, // alg none
  { authorization: "Bearer " + "A".repeat(6_000) },
  { authorization: "Basic Zm9vOmJhcg==" },
  { authorization: "bearer ..." },
  { authorization: "Bearer \u00ff\u00fe" },
  { authorization: `Bearer ${EXPIRED_TOKEN}` },
  { authorization: `Bearer ${FOREIGN_TOKEN}` },
  { authorization: `Bearer ${ADMIN_TOKEN.split(".").slice(0, 2).join(".")}.` }, // signature stripped
  { authorization: `Bearer ${Buffer.from('{"alg":"none"}').toString("base64url")}.${ADMIN_TOKEN.split(".")[1]}.` },
  { "x-user-id": "" },
  { "x-user-id": "a b" },
  { "x-user-id": "x".repeat(129) },
  { "x-user-id": "\u00e9" },
  { "grpc-timeout": "abc" },
  { "grpc-timeout": "-1S" },
  { "grpc-timeout": "0n" },
  { "grpc-timeout": "1n" },
  { "grpc-timeout": "99999999999H" },
  { "grpc-timeout": "1" },
  { "connect-timeout-ms": "-5" },
  { "connect-timeout-ms": "abc" },
  { "connect-timeout-ms": "1" },
  { "connect-timeout-ms": "99999999999999999999" },
  { "grpc-encoding": "br0ken" },
  { "connect-content-encoding": "br0ken" },
  { "content-encoding": "gzip" },
  { "grpc-accept-encoding": "\u00ff" },
  { "connect-protocol-version": "2" },
  { traceparent: "00-zz-zz-zz" },
  { "x-huge": "h".repeat(12_000) },
];

/** How long a fuzzed server stream (Subscribe) may run before its deadline ends it. */
const STREAM_DEADLINE_MS = 100;

/** REST bindings of the contracts, as committed for the edges (google.api.http). */
const REST_ROUTES = (JSON.parse(readFileSync(new URL("../../envoy/rest-routes.json", import.meta.url), "utf8")) as {
  routes: { method: "GET" | "POST"; path: string; body: string; rpc: string }[];
}).routes;

/** The protocols that can carry `method` (Connect GET only for side-effect-free methods; REST where annotated). */
export function protocolsFor(method: DescMethod): Protocol[] {
  const list: Protocol[] = ["grpc", "grpc-web", "connect-json", "connect-proto"];
  if (method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS) list.push("connect-get");
  if (REST_ROUTES.some((r) => r.rpc === `${method.parent.typeName}.${method.name}`)) list.push("rest");
  return list;
}

/**
 * One hostile request: hostile field values in a well-formed message, or a
 * broken encoding, a broken envelope, broken JSON or broken headers.
 * `valid` is a message that would succeed, so some requests get past the
 * checks and reach the store.
 */
export function hostileRequest(rnd: Random, method: DescMethod, protocol: Protocol, valid: Message | undefined): RawRequest {
  const path = `/${method.parent.typeName}/${method.name}`;
  const { binary, json } = hostileBody(rnd, method, valid);
  const headers: Record<string, string> = { ...callerHeaders() };
  if (rnd.chance(0.15)) Object.assign(headers, rnd.pick(HOSTILE_HEADERS));
  // A server stream runs until its deadline: a short one, set last, so every
  // stream ends (hostile timeouts are tried on the unary methods).
  const streaming = method.methodKind === "server_streaming";
  if (streaming) Object.assign(headers, { "grpc-timeout": `${STREAM_DEADLINE_MS}m`, "connect-timeout-ms": String(STREAM_DEADLINE_MS) });
  switch (protocol) {
    case "grpc":
    case "grpc-web": {
      const web = protocol === "grpc-web";
      Object.assign(headers, { "content-type": web ? "application/grpc-web+proto" : "application/grpc", ...(web ? {} : { te: "trailers" }) }, pickedHeaders(headers));
      return { protocol, httpMethod: "POST", path, headers, body: rnd.chance(0.2) ? brokenEnvelope(rnd, binary) : envelope(binary) };
    }
    case "connect-proto":
    case "connect-json":
      if (!streaming) break;
      // Connect streams: enveloped messages and a "+proto"/"+json" content type.
      return {
        protocol,
        httpMethod: "POST",
        path,
        headers: { ...headers, "content-type": protocol === "connect-proto" ? "application/connect+proto" : "application/connect+json", "connect-protocol-version": "1", ...pickedHeaders(headers) },
        body: rnd.chance(0.2) ? brokenEnvelope(rnd, protocol === "connect-proto" ? binary : Buffer.from(json)) : envelope(protocol === "connect-proto" ? binary : Buffer.from(json)),
      };
  }
  switch (protocol) {
    case "connect-proto":
      return { protocol, httpMethod: "POST", path, headers: { ...headers, "content-type": "application/proto", "connect-protocol-version": "1", ...pickedHeaders(headers) }, body: binary };
    case "connect-json":
      return { protocol, httpMethod: "POST", path, headers: { ...headers, "content-type": rnd.pick(["application/json", "application/json; charset=utf-8", "application/json; charset=utf-16"]), ...pickedHeaders(headers) }, body: Buffer.from(json) };
    case "connect-get": {
      const proto = rnd.chance(0.5);
      const message = proto ? base64Encode(binary, "url") : rnd.chance(0.7) ? uriEncode(json) : rnd.pick(["%", "%ZZ", "%C0%80", "%ED%A0%80", "", "a".repeat(9_000)]);
      const params = [`connect=v1`, `encoding=${proto ? "proto" : rnd.pick(["json", "json", "xml", ""])}`, `message=${message}`];
      if (proto) params.push(rnd.pick(["base64=1", "base64=1", "base64=0", "base64=x"]));
      if (rnd.chance(0.1)) params.push(rnd.pick(["compression=gzip", "compression=zz", "connect=v2", "message=dup"]));
      return { protocol, httpMethod: "GET", path: `${path}?${params.join("&")}`, headers, body: new Uint8Array() };
    }
    case "rest":
      return restRequest(rnd, method, headers, json);
  }
}

/** A hostile header replaces the protocol's own where both name it (e.g. content-encoding). */
function pickedHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ["grpc-encoding", "connect-content-encoding", "content-encoding", "connect-protocol-version"]) {
    if (headers[name] !== undefined) out[name] = headers[name];
  }
  return out;
}

function brokenEnvelope(rnd: Random, payload: Uint8Array): Uint8Array {
  switch (rnd.int(7)) {
    case 0:
      return envelope(payload, 1); // "compressed" with no grpc-encoding
    case 1:
      return envelope(payload, 0x80); // a trailer frame from a client
    case 2:
      return envelope(payload, 0, payload.length + 100); // promises more than it sends
    case 3:
      return envelope(payload, 0, 0xffffffff);
    case 4:
      return concat(envelope(payload), envelope(payload)); // two messages for a unary call
    case 5:
      return rnd.bytes(rnd.int(5)); // not even a prefix
    default:
      return concat(envelope(payload), Uint8Array.of(0, 0)); // trailing garbage
  }
}

function restRequest(rnd: Random, method: DescMethod, headers: Record<string, string>, json: string): RawRequest {
  const routes = REST_ROUTES.filter((r) => r.rpc === `${method.parent.typeName}.${method.name}`);
  const route = rnd.pick(routes);
  const segment = () => {
    const value = rnd.pick(HOSTILE_STRINGS).slice(0, 2_000);
    return rnd.chance(0.85) ? uriEncode(value) : rnd.pick(["%", "%ZZ", "%C0%80", "%ED%A0%80", "a%2Fb", "..", "%00", value.replace(/[^\x21-\x7e]/g, "")]);
  };
  const path = route.path.replace(/\{[^}]+\}/g, () => segment());
  if (route.method === "GET") {
    const query = method.input.fields
      .filter(() => rnd.chance(0.5))
      .map((f) => `${rnd.chance(0.5) ? f.name : f.jsonName}=${rnd.chance(0.3) ? uriEncode(String(rnd.pick(HOSTILE_JSON))) : segment()}`);
    if (rnd.chance(0.1)) query.push(rnd.pick(["unknown=1", "page_size=1&page_size=2", "%ZZ=1", "=", "&&"]));
    return { protocol: "rest", httpMethod: "GET", path: query.length ? `${path}?${query.join("&")}` : path, headers, body: new Uint8Array() };
  }
  const body = rnd.chance(0.1) ? rnd.pick(BROKEN_JSON) : route.body === "*" || route.body === "" ? json : restBodyField(json, route.body);
  return { protocol: "rest", httpMethod: "POST", path, headers: { ...headers, "content-type": rnd.pick(["application/json", "application/json", "text/plain", "application/x-www-form-urlencoded"]) }, body: Buffer.from(body) };
}

/** For `body: "event"` bindings the body is that field's JSON. */
function restBodyField(json: string, field: string): string {
  try {
    const parsed = JSON.parse(json) as Record<string, unknown>;
    const camel = field.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    return JSON.stringify(parsed?.[camel] ?? parsed?.[field] ?? parsed);
  } catch {
    return json; // already broken: send as is
  }
}


/** encodeURIComponent, except that a lone surrogate goes out as its (invalid) CESU-8 bytes. */
function uriEncode(text: string): string {
  return text
    .split(/([\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF])/)
    .map((part, i) => (i % 2 ? "%ED%A0%80" : encodeURIComponent(part)))
    .join("");
}
