import type { Writable } from "node:stream";
import {
  fromJson,
  getOption,
  ScalarType,
  toJson,
  type DescField,
  type DescMessage,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  type DescService,
  type JsonObject,
  type JsonValue,
  type Message,
} from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { SpanKind, SpanStatusCode, context, trace } from "@opentelemetry/api";
import { callerGone } from "../services/runtime/errors.js";
import { contextFromTraceHeaders, tracer } from "../services/runtime/tracing.js";
import { http as httpRule } from "../gen/google/api/annotations_pb.js";
import type { HttpRule } from "../gen/google/api/http_pb.js";
import { errorJson, httpStatusFromCode } from "./errors.js";
import { fromAbortSignal } from "../services/runtime/call-signal.js";
import { deadlineIn, type CallInfo, type Forwarder } from "./forward.js";
import { BodyTooLargeError, headersOf, pathOf, queryOf, readBody, send, type NodeRequest, type NodeResponse } from "./http.js";
import type { RequestRecord } from "./metrics.js";
import { literalCount, matchPath, parsePathTemplate, type PathTemplate } from "./path-template.js";

/** One HTTP binding of an RPC, from its `google.api.http` annotation. */
export interface RestRoute {
  httpMethod: string;
  template: PathTemplate;
  /** For metrics and logs, e.g. "GET /v1/events/{id}". */
  name: string;
  method: DescMethodUnary | DescMethodServerStreaming;
  /** Fields bound by path variables, by dotted path. */
  pathFields: Map<string, DescField[]>;
  /** "" no body, "*" the body is the request, or the top-level field the body fills. */
  body: "" | "*" | DescField;
  /** The response field sent as the body (`response_body`), or the whole response. */
  responseBody: DescField | undefined;
}

/**
 * Every REST route of the services, read from the `google.api.http`
 * annotations in the generated descriptors (so REST follows the contracts
 * with no second source of truth). Throws on an annotation the gateway
 * cannot honour, at startup rather than on the first request.
 */
export function restRoutes(services: readonly DescService[]): RestRoute[] {
  const routes: RestRoute[] = [];
  for (const service of services) {
    for (const method of service.methods) {
      const rule = getOption(method, httpRule);
      if (!rule.pattern.case) continue;
      if (method.methodKind !== "unary" && method.methodKind !== "server_streaming") {
        throw new Error(`${method.parent.typeName}.${method.name}: only unary and server-streaming methods can have HTTP bindings`);
      }
      for (const binding of [rule, ...rule.additionalBindings]) routes.push(routeOf(method as DescMethodUnary | DescMethodServerStreaming, binding));
    }
  }
  return routes;
}

function routeOf(method: DescMethodUnary | DescMethodServerStreaming, rule: HttpRule): RestRoute {
  const where = `${method.parent.typeName}.${method.name}`;
  let httpMethod: string;
  let path: string;
  switch (rule.pattern.case) {
    case "custom":
      httpMethod = rule.pattern.value.kind.toUpperCase();
      path = rule.pattern.value.path;
      break;
    case undefined:
      throw new Error(`${where}: an HTTP binding without a pattern`);
    default:
      httpMethod = rule.pattern.case.toUpperCase();
      path = rule.pattern.value;
  }
  const template = parsePathTemplate(path);
  const pathFields = new Map<string, DescField[]>();
  for (const variable of template.variables) {
    const fields = resolveFieldPath(method.input, variable.fieldPath);
    const leaf = typeof fields === "string" ? undefined : fields.at(-1);
    if (typeof fields === "string" || (leaf?.fieldKind !== "scalar" && leaf?.fieldKind !== "enum")) {
      throw new Error(`${where}: path variable {${variable.fieldPath.join(".")}} must name a singular scalar field`);
    }
    pathFields.set(variable.fieldPath.join("."), fields);
  }
  let body: RestRoute["body"] = "";
  if (rule.body === "*") body = "*";
  else if (rule.body !== "") {
    const field = method.input.fields.find((f) => f.name === rule.body);
    if (!field) throw new Error(`${where}: body field ${JSON.stringify(rule.body)} does not exist`);
    body = field;
  }
  let responseBody: DescField | undefined;
  if (rule.responseBody !== "") {
    responseBody = method.output.fields.find((f) => f.name === rule.responseBody);
    if (responseBody?.fieldKind !== "message") throw new Error(`${where}: response_body must name a message field`);
  }
  return { httpMethod, template, name: `${httpMethod} ${path}`, method, pathFields, body, responseBody };
}

export interface RestOptions {
  /** Largest JSON body (413 above). */
  maxRequestBytes: number;
  /** Cap for a `grpc-timeout` header's deadline. */
  maxDeadlineMs: number;
}

// Codes that are the gateway's or a service's fault, not the caller's: an error span.
const SERVER_FAULTS = new Set(["Unknown", "DeadlineExceeded", "Unimplemented", "Internal", "Unavailable", "DataLoss"]);

/**
 * HTTP/JSON transcoding (as Google's API gateways and Envoy's
 * grpc_json_transcoder do it): a REST request becomes the RPC's request
 * message (path variables, query parameters, JSON body), goes upstream
 * through the same forwarder as every other protocol, and its response or
 * error comes back as JSON with a matching HTTP status.
 */
export class RestTranscoder {
  private readonly prefixes: Set<string>;

  constructor(
    readonly routes: readonly RestRoute[],
    private readonly forwarder: Forwarder,
    private readonly options: RestOptions,
  ) {
    // First path segments that belong to the REST API ("v1"): any other
    // request under them is an unknown route (404 JSON), not a web page.
    this.prefixes = new Set(routes.map((r) => r.template.segments[0]).flatMap((s) => (s?.kind === "literal" ? [s.value] : [])));
  }

  /** HTTP methods the routes use, for CORS. */
  get httpMethods(): string[] {
    return [...new Set(this.routes.map((r) => r.httpMethod))];
  }

  /** Whether the path is in the REST API's space (answered here, 404 included). */
  owns(path: string): boolean {
    return this.prefixes.has(path.split("/")[1] ?? "");
  }

  async handle(req: NodeRequest, res: NodeResponse, record: RequestRecord): Promise<void> {
    record.protocol = "rest";
    const path = pathOf(req);
    const matched = this.match(req.method ?? "GET", path);
    if (!matched) {
      record.route = "unmatched";
      return this.fail(res, record, new ConnectError(`no REST route for ${req.method} ${path}`, Code.NotFound));
    }
    const { route, values } = matched;
    record.route = route.name;
    // REST calls pass no RPC interceptor: their server span starts here, a
    // child of the caller's traceparent (a new trace without a valid one).
    const parent = contextFromTraceHeaders({ traceparent: req.headers.traceparent, tracestate: req.headers.tracestate });
    const span = tracer().startSpan(route.name, { kind: SpanKind.SERVER }, parent);
    const { traceId, spanId } = span.spanContext();
    record.trace = { trace_id: traceId, span_id: spanId };
    try {
      await context.with(trace.setSpan(parent, span), () => this.call(route, values, req, res, record));
    } finally {
      if (span.isRecording()) {
        span.setAttribute("http.route", route.name);
        if (record.code !== undefined && SERVER_FAULTS.has(record.code)) span.setStatus({ code: SpanStatusCode.ERROR, message: record.code });
      }
      span.end();
    }
  }

  private async call(route: RestRoute, values: Map<string, string>, req: NodeRequest, res: NodeResponse, record: RequestRecord): Promise<void> {
    let input: Message;
    let call: CallInfo;
    try {
      input = await this.requestMessage(route, values, req);
      call = this.callInfo(req, res);
    } catch (err) {
      return this.fail(res, record, err);
    }
    if (route.method.methodKind === "unary") {
      try {
        const output = await this.forwarder.unary(route.method, input, call);
        record.code = "OK";
        send(res, 200, JSON_HEADERS, JSON.stringify(this.responseJson(route, output)));
      } catch (err) {
        this.fail(res, record, err);
      }
      return;
    }
    await this.stream(route, route.method, input, call, res, record);
  }

  private match(httpMethod: string, path: string): { route: RestRoute; values: Map<string, string> } | undefined {
    let best: { route: RestRoute; values: Map<string, string> } | undefined;
    for (const route of this.routes) {
      if (route.httpMethod !== httpMethod) continue;
      const values = matchPath(route.template, path);
      if (values && (!best || literalCount(route.template) > literalCount(best.route.template))) best = { route, values };
    }
    return best;
  }

  /** Body, then path variables (they win over the body), then query parameters. */
  private async requestMessage(route: RestRoute, pathValues: Map<string, string>, req: NodeRequest): Promise<Message> {
    const input = route.method.input;
    let json: JsonObject = {};
    if (route.body !== "") {
      const body = await this.readJson(req);
      if (route.body === "*") {
        if (body !== undefined && (typeof body !== "object" || body === null || Array.isArray(body))) {
          throw invalid("the request body must be a JSON object");
        }
        json = body ?? {};
      } else if (body !== undefined) {
        json[route.body.jsonName] = body;
      }
    }
    for (const [dotted, fields] of route.pathFields) setJsonField(json, fields, textToJson(fields.at(-1)!, pathValues.get(dotted)!));

    const query = new Map<string, string[]>();
    for (const [key, value] of queryOf(req)) query.set(key, [...(query.get(key) ?? []), value]);
    for (const [key, values] of query) {
      const fields = resolveFieldPath(input, key.split("."));
      if (typeof fields === "string") throw invalid(`unknown query parameter ${JSON.stringify(key)}: ${fields}`);
      const dotted = fields.map((f) => f.name).join(".");
      const bound = route.body === "*" || (route.body !== "" && fields[0] === route.body) || [...route.pathFields.keys()].some((p) => p === dotted || p.startsWith(`${dotted}.`) || dotted.startsWith(`${p}.`));
      if (bound) throw invalid(`query parameter ${JSON.stringify(key)} is not allowed: the field is set by the path or the body`);
      const leaf = fields.at(-1)!;
      if (leaf.fieldKind !== "list" && values.length > 1) throw invalid(`query parameter ${JSON.stringify(key)} given more than once`);
      const value = leaf.fieldKind === "list" ? values.map((v) => textToJson(leaf, v)) : textToJson(leaf, values[0]!);
      setJsonField(json, fields, value);
    }
    try {
      // Unknown fields are refused (the default), as the services refuse them over Connect JSON.
      return fromJson(input, json);
    } catch (err) {
      throw invalid(err instanceof Error ? err.message : String(err));
    }
  }

  private async readJson(req: NodeRequest): Promise<JsonValue | undefined> {
    const raw = await readBody(req, this.options.maxRequestBytes);
    if (raw.length === 0) return undefined;
    // JSON only: the form and text bodies a page may send cross-origin
    // without a CORS preflight never reach a service.
    const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
    if (type !== "application/json") {
      throw new RestError(415, new ConnectError(`content-type must be application/json, got ${JSON.stringify(type)}`, Code.InvalidArgument));
    }
    try {
      return JSON.parse(raw.toString("utf8")) as JsonValue;
    } catch (err) {
      throw invalid(`the request body is not valid JSON: ${(err as Error).message}`);
    }
  }

  /**
   * REST has no deadline of its own; a `grpc-timeout` header is honoured
   * (as Envoy passes it on), capped like every deadline.
   */
  private callInfo(req: NodeRequest, res: NodeResponse): CallInfo {
    const header = headersOf(req);
    const raw = header.get("grpc-timeout");
    let timeoutMs: number | undefined;
    if (raw !== null) {
      timeoutMs = parseGrpcTimeout(raw);
      if (timeoutMs === undefined) throw invalid(`grpc-timeout ${JSON.stringify(raw)} is not a valid timeout`);
      timeoutMs = Math.min(timeoutMs, this.options.maxDeadlineMs); // capped like every deadline
    }
    const abort = new AbortController();
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => abort.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded)), timeoutMs);
    const deadline = deadlineIn(timeoutMs);
    res.once("close", () => {
      clearTimeout(timer);
      abort.abort(callerGone(deadline));
    });
    return { header, signal: fromAbortSignal(abort.signal), deadline };
  }

  private responseJson(route: RestRoute, output: Message): JsonValue {
    // Zero values are written out, so a REST client sees `"seatsAvailable": 0`
    // on a sold-out event rather than no field at all.
    if (!route.responseBody || route.responseBody.fieldKind !== "message") return toJson(route.method.output, output, JSON_WRITE);
    const value = (output as unknown as Record<string, Message | undefined>)[route.responseBody.localName];
    return value ? toJson(route.responseBody.message, value, JSON_WRITE) : {};
  }

  /**
   * A server stream as newline-delimited JSON (`application/x-ndjson`):
   * one response message per line. The status is sent with the first
   * message, or after a short wait, so that a call the upstream refuses at
   * once still gets a proper error status; a failure after that arrives
   * as a last line `{"error": {code, message, details}}`.
   */
  private async stream(route: RestRoute, method: DescMethodServerStreaming, input: Message, call: CallInfo, res: NodeResponse, record: RequestRecord): Promise<void> {
    const messages = this.forwarder.serverStream(method, input, call);
    res.once("close", () => void messages.return(undefined));
    let pending = messages.next();
    const committed = () => {
      if (res.headersSent) return;
      res.writeHead(200, { "content-type": "application/x-ndjson", "cache-control": "no-store", "x-content-type-options": "nosniff" });
      // HTTP/1.1 holds headers back until the first write; the client should know now.
      (res as { flushHeaders?: () => void }).flushHeaders?.();
    };
    try {
      const first = await Promise.race([pending, sleep(STREAM_COMMIT_MS, call.signal.signal)]);
      committed();
      if (first !== undefined && first.done) {
        record.code = "OK";
        res.end();
        return;
      }
      for (;;) {
        const next = await pending;
        if (next.done) break;
        if (!(res as Writable).write(`${JSON.stringify(toJson(route.method.output, next.value, JSON_WRITE))}\n`)) {
          // A slow reader: wait for it (or for it to leave).
          await drainedOrClosed(res);
        }
        if (res.destroyed) return; // the caller left; the upstream call is cancelled
        pending = messages.next();
      }
      record.code = "OK";
      res.end();
    } catch (err) {
      const error = ConnectError.from(err);
      record.code = Code[error.code];
      if (!res.headersSent) return this.fail(res, record, error);
      if (!res.writableEnded && !res.destroyed) res.end(`${JSON.stringify({ error: errorJson(error) })}\n`);
    }
  }

  private fail(res: NodeResponse, record: RequestRecord, err: unknown): void {
    if (err instanceof BodyTooLargeError) {
      err = new RestError(413, new ConnectError(`${err.message}`, Code.ResourceExhausted));
    }
    const status = err instanceof RestError ? err.status : undefined;
    const error = ConnectError.from(err instanceof RestError ? err.error : err);
    record.code = Code[error.code];
    // The unread rest of a refused body is dropped after the response (DrainingServer).
    send(res, status ?? httpStatusFromCode(error.code), JSON_HEADERS, JSON.stringify(errorJson(error)));
  }
}

const JSON_HEADERS = { "content-type": "application/json", "cache-control": "no-store" };
const JSON_WRITE = { alwaysEmitImplicit: true } as const;
const STREAM_COMMIT_MS = 100;

/** An error whose HTTP status is not the one its code maps to (413, 415). */
class RestError extends Error {
  constructor(
    readonly status: number,
    readonly error: ConnectError,
  ) {
    super(error.message);
  }
}

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}

function drainedOrClosed(res: NodeResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

/** Resolves after `ms`; never, once the call is aborted (its failure then decides). */
function sleep(ms: number, signal: AbortSignal): Promise<undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
  });
}

/** A dotted path of field names (proto or JSON spelling) to its fields; a string says what is wrong. */
function resolveFieldPath(message: DescMessage, path: readonly string[]): DescField[] | string {
  const fields: DescField[] = [];
  let current: DescMessage = message;
  for (const [i, name] of path.entries()) {
    const field = current.fields.find((f) => f.name === name || f.jsonName === name);
    if (!field) return `${current.typeName} has no field ${JSON.stringify(name)}`;
    fields.push(field);
    if (i < path.length - 1) {
      if (field.fieldKind !== "message") return `${field.name} is not a message`;
      current = field.message;
    }
  }
  return fields;
}

/** Sets a value at a field path in the request's JSON, replacing either spelling of each name. */
function setJsonField(root: JsonObject, fields: readonly DescField[], value: JsonValue): void {
  let node = root;
  for (const [i, field] of fields.entries()) {
    const existing = node[field.jsonName] ?? node[field.name];
    delete node[field.name];
    if (i === fields.length - 1) {
      node[field.jsonName] = value;
      return;
    }
    if (existing !== undefined && (typeof existing !== "object" || existing === null || Array.isArray(existing))) {
      throw invalid(`${field.name} must be an object`);
    }
    const child: JsonObject = existing ?? {};
    node[field.jsonName] = child;
    node = child;
  }
}

// Well-known types whose JSON form is a string, so they can come from text.
const TEXT_MESSAGES = new Set([
  "google.protobuf.Timestamp",
  "google.protobuf.Duration",
  "google.protobuf.FieldMask",
  "google.protobuf.StringValue",
  "google.protobuf.BytesValue",
  "google.protobuf.Int32Value",
  "google.protobuf.UInt32Value",
  "google.protobuf.Int64Value",
  "google.protobuf.UInt64Value",
  "google.protobuf.FloatValue",
  "google.protobuf.DoubleValue",
]);

/**
 * A path variable or query parameter (text) as the JSON value the field
 * takes; fromJson then checks it (numbers in strings are valid proto JSON).
 */
function textToJson(field: DescField, text: string): JsonValue {
  const element = elementOf(field);
  switch (element.kind) {
    case "scalar":
      return element.scalar === ScalarType.BOOL ? boolText(field, text) : text;
    case "enum":
      return /^-?\d+$/.test(text) ? Number(text) : text;
    case "message":
      if (element.message.typeName === "google.protobuf.BoolValue") return boolText(field, text);
      if (TEXT_MESSAGES.has(element.message.typeName)) return text;
      throw invalid(`${field.name} (${element.message.typeName}) cannot be set from a path or query parameter`);
    case "map":
      throw invalid(`${field.name} (a map) cannot be set from a path or query parameter`);
  }
}

/** The type of one value of a field (of an element, for a repeated field). */
function elementOf(field: DescField): { kind: "scalar"; scalar: ScalarType } | { kind: "enum" } | { kind: "message"; message: DescMessage } | { kind: "map" } {
  switch (field.fieldKind) {
    case "scalar":
      return { kind: "scalar", scalar: field.scalar };
    case "enum":
      return { kind: "enum" };
    case "message":
      return { kind: "message", message: field.message };
    case "list":
      if (field.listKind === "scalar") return { kind: "scalar", scalar: field.scalar };
      if (field.listKind === "enum") return { kind: "enum" };
      return { kind: "message", message: field.message };
    case "map":
      return { kind: "map" };
  }
}

function boolText(field: DescField, text: string): boolean {
  if (text === "true") return true;
  if (text === "false") return false;
  throw invalid(`${field.name} must be true or false, got ${JSON.stringify(text)}`);
}

/** gRPC's timeout header ("100m", "5S", ...) in milliseconds; undefined when malformed. */
export function parseGrpcTimeout(value: string): number | undefined {
  const match = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!match) return undefined;
  const unitMs = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000001 }[match[2] as "H"];
  return Number(match[1]) * unitMs;
}
