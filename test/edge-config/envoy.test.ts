// envoy/envoy.yaml, checked offline: against Envoy's own API schema (no
// Envoy binary here), and against the contracts in proto/ (every method
// routed to its service, retries only where safe, nothing internal exposed,
// the transcoder's descriptor set up to date).
import { readFile } from "node:fs/promises";
import path from "node:path";
import { equals, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { parseDocument, type Document } from "yaml";
import { beforeAll, describe, expect, it } from "vitest";
import { buildContractsDescriptor, loadContracts, type ContractMethod, type Contracts } from "../../envoy/contracts.js";
import { clusterByName, EDGE_PORT, endpointsOf, hcmOn, loadEnvoyConfig, matchRoute, readEnvoyYaml, type EnvoyConfig, type Route } from "./envoy-config.js";
import { formatIssue, loadEnvoySchema, patchValidateProto, validateEnvoyConfig, type EnvoySchema } from "./envoy-schema.js";

const root = process.cwd();

/** Which cluster serves which service; a new service needs a line here and a cluster. */
const SERVICE_CLUSTERS: Record<string, string> = {
  "myevents.v1.EventService": "event_service",
  "myevents.v1.BookingService": "booking_service",
  "myevents.v1.NotificationService": "notification_service",
};

/** The HTTP filters, in the order the edge needs them (see the comment in envoy.yaml). */
const FILTER_ORDER = [
  ["envoy.filters.http.cors", "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"],
  ["envoy.filters.http.grpc_web", "type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb"],
  ["envoy.filters.http.connect_grpc_bridge", "type.googleapis.com/envoy.extensions.filters.http.connect_grpc_bridge.v3.FilterConfig"],
  ["envoy.filters.http.grpc_json_transcoder", "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder"],
  ["envoy.filters.http.local_ratelimit", "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"],
  ["envoy.filters.http.router", "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"],
];

/** Admin and metrics ports of every component (DESIGN.md); none may be reachable through the edge. */
const ADMIN_PORTS = [9100, 9101, 9102, 9103, 9901];

let schema: EnvoySchema;
let contracts: Contracts;
let config: EnvoyConfig;
let yamlText: string;

beforeAll(async () => {
  [schema, contracts] = await Promise.all([loadEnvoySchema(), loadContracts(root)]);
  yamlText = readEnvoyYaml(root);
  config = loadEnvoyConfig(root);
});

const methods = (): ContractMethod[] => contracts.services.flatMap((s) => s.methods);
const edge = () => hcmOn(config, EDGE_PORT);
const edgeRoutes = (): Route[] => {
  const hosts = edge().route_config.virtual_hosts;
  expect(hosts.map((h) => h.domains)).toEqual([["*"]]); // one virtual host: route matching is all there is
  return hosts[0]!.routes;
};

describe("envoy.yaml against Envoy's API schema", () => {
  it("is a valid Bootstrap: no unknown or deprecated fields, right types, known @types, validate rules hold", () => {
    const result = validateEnvoyConfig(schema, yamlText);
    expect(result.issues.map(formatIssue)).toEqual([]);
    expect(result.bootstrap?.$typeName).toBe("envoy.config.bootstrap.v3.Bootstrap");
  });

  const cluster1 = ["static_resources", "clusters", 1];
  const socket1 = [...cluster1, "load_assignment", "endpoints", 0, "lb_endpoints", 0, "endpoint", "address", "socket_address"];
  const hcmPath = ["static_resources", "listeners", 0, "filter_chains", 0, "filters", 0, "typed_config"];
  const hcmText = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config";

  /** Each case edits the parsed YAML and expects exactly one issue, at `path`. */
  const cases: { name: string; edit: (doc: Document) => void; path: string; message: RegExp }[] = [
    {
      name: "a misspelled field",
      edit: (d) => {
        d.deleteIn([...cluster1, "connect_timeout"]);
        d.setIn([...cluster1, "connect_timeoutt"], "1s");
      },
      path: "static_resources.clusters[1].connect_timeoutt",
      message: /^unknown field \(not in envoy\.config\.cluster\.v3\.Cluster\); did you mean "connect_timeout"\?$/,
    },
    {
      name: "a string where a port number belongs",
      edit: (d) => d.setIn([...socket1, "port_value"], "eighty"),
      path: "static_resources.clusters[1].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value",
      message: /^must be a uint32, got the string "eighty"$/,
    },
    {
      name: "a number where a duration belongs",
      edit: (d) => d.setIn([...cluster1, "connect_timeout"], 5),
      path: "static_resources.clusters[1].connect_timeout",
      message: /must be a duration string/,
    },
    {
      name: "a mapping where a list belongs",
      edit: (d) => d.setIn([...cluster1, "health_checks"], { timeout: "1s" }),
      path: "static_resources.clusters[1].health_checks",
      message: /^must be a list, got a mapping$/,
    },
    {
      name: "an unknown typed_config @type",
      edit: (d) => d.setIn([...hcmPath, "http_filters", 1, "typed_config", "@type"], "type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWebb"),
      path: `${hcmText}.http_filters[1].typed_config.@type`,
      message: /^unknown type "type\.googleapis\.com\/envoy\.extensions\.filters\.http\.grpc_web\.v3\.GrpcWebb"/,
    },
    {
      name: "an unknown field inside an Any (checked against the @type)",
      edit: (d) => d.setIn([...hcmPath, "http_filters", 3, "typed_config", "convert_grpc_statuss"], true),
      path: `${hcmText}.http_filters[3].typed_config.convert_grpc_statuss`,
      message: /not in envoy\.extensions\.filters\.http\.grpc_json_transcoder\.v3\.GrpcJsonTranscoder/,
    },
    {
      name: "an unknown enum value name",
      edit: (d) => d.setIn([...cluster1, "lb_policy"], "ROUND_ROBBIN"),
      path: "static_resources.clusters[1].lb_policy",
      message: /^unknown value "ROUND_ROBBIN" .*did you mean "ROUND_ROBIN"\?$/,
    },
    {
      name: "two members of one oneof",
      edit: (d) => d.setIn([...hcmPath, "route_config", "virtual_hosts", 0, "routes", 0, "match", "prefix"], "/"),
      path: `${hcmText}.route_config.virtual_hosts[0].routes[0].match.prefix`,
      message: /^only one of oneof "path_specifier" may be set, "path" is set too$/,
    },
    {
      name: "a deprecated field",
      edit: (d) => d.setIn([...hcmPath, "route_config", "virtual_hosts", 0, "cors"], {}),
      path: `${hcmText}.route_config.virtual_hosts[0].cors`,
      message: /^deprecated field of envoy\.config\.route\.v3\.VirtualHost$/,
    },
    // protoc-gen-validate rules
    {
      name: "a port above 65535 (uint32 lte)",
      edit: (d) => d.setIn([...socket1, "port_value"], 70000),
      path: "static_resources.clusters[1].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value",
      message: /^must be <= 65535$/,
    },
    {
      name: "an empty cluster name (string min_len)",
      edit: (d) => d.setIn([...cluster1, "name"], ""),
      path: "static_resources.clusters[1].name",
      message: /^must not be empty$/,
    },
    {
      name: "a zero connect timeout (duration gt)",
      edit: (d) => d.setIn([...cluster1, "connect_timeout"], "0s"),
      path: "static_resources.clusters[1].connect_timeout",
      message: /^must be > 0s$/,
    },
    {
      name: "a health check without interval (message required)",
      edit: (d) => d.deleteIn([...cluster1, "health_checks", 0, "interval"]),
      path: "static_resources.clusters[1].health_checks[0].interval",
      message: /^is required$/,
    },
    {
      name: "a health check without healthy_threshold (wrapper required)",
      edit: (d) => d.deleteIn([...cluster1, "health_checks", 0, "healthy_threshold"]),
      path: "static_resources.clusters[1].health_checks[0].healthy_threshold",
      message: /^is required$/,
    },
    {
      name: "an undefined enum number (enum defined_only)",
      edit: (d) => d.setIn([...cluster1, "lb_policy"], 42),
      path: "static_resources.clusters[1].lb_policy",
      message: /^must be a defined value of enum envoy\.config\.cluster\.v3\.Cluster\.LbPolicy, got 42$/,
    },
    {
      name: "a virtual host without domains (repeated min_items)",
      edit: (d) => d.setIn([...hcmPath, "route_config", "virtual_hosts", 0, "domains"], []),
      path: `${hcmText}.route_config.virtual_hosts[0].domains`,
      message: /^must have at least 1 item$/,
    },
    {
      name: "a transcoder without descriptor (oneof required)",
      edit: (d) => d.deleteIn([...hcmPath, "http_filters", 3, "typed_config", "proto_descriptor"]),
      path: `${hcmText}.http_filters[3].typed_config`,
      message: /^one of proto_descriptor, proto_descriptor_bin is required/,
    },
    {
      name: "an empty HTTP connection manager stat_prefix (string min_len inside an Any)",
      edit: (d) => d.setIn([...hcmPath, "stat_prefix"], ""),
      path: `${hcmText}.stat_prefix`,
      message: /^must not be empty$/,
    },
    {
      name: "a header name with a line break (well_known_regex HTTP_HEADER_NAME, strict: false)",
      edit: (d) => d.setIn(["static_resources", "listeners", 1, "filter_chains", 0, "filters", 0, "typed_config", "route_config", "virtual_hosts", 0, "routes", 0, "match", "headers", 0, "name"], "x-bad\r\nname"),
      path: "static_resources.listeners[1].filter_chains[0].filters[0].typed_config.route_config.virtual_hosts[0].routes[0].match.headers[0].name",
      message: /^must be a valid HTTP header name$/,
    },
  ];

  it.each(cases)("rejects $name, naming its path", ({ edit, path: expected, message }) => {
    const doc = parseDocument(yamlText);
    edit(doc);
    const { issues } = validateEnvoyConfig(schema, doc);
    expect(issues.map(formatIssue)).toHaveLength(1);
    expect(issues[0]!.path).toBe(expected);
    expect(issues[0]!.message).toMatch(message);
  });

  describe("the validate.proto gap (StringRules.ignore_empty, absent from the deps' copy)", () => {
    const upstreamOptions = [...cluster1, "typed_extension_protocol_options", "envoy.extensions.upstreams.http.v3.HttpProtocolOptions", "upstream_http_protocol_options"];

    it("patches a temp copy once, idempotently", () => {
      const original = "message StringRules {\n  optional string const = 1;\n}\n";
      const patched = patchValidateProto(original);
      expect(patched).toMatch(/message StringRules \{\n.*\n\s*optional bool ignore_empty = 26;/);
      expect(patchValidateProto(patched)).toBe(patched);
    });

    it("honours ignore_empty: an empty header name that may be empty passes", () => {
      // override_auto_sni_header: {well_known_regex: HTTP_HEADER_NAME, ignore_empty: true}
      const doc = parseDocument(yamlText);
      doc.setIn(upstreamOptions, { auto_sni: true });
      expect(validateEnvoyConfig(schema, doc).issues.map(formatIssue)).toEqual([]);
    });

    it("still applies the rest of that rule", () => {
      const doc = parseDocument(yamlText);
      doc.setIn(upstreamOptions, { auto_sni: true, override_auto_sni_header: "x bad" });
      expect(validateEnvoyConfig(schema, doc).issues.map(formatIssue)).toEqual([
        'static_resources.clusters[1].typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].upstream_http_protocol_options.override_auto_sni_header: must be a valid HTTP header name',
      ]);
    });
  });

  it("reports the YAML line of a problem found in the text", () => {
    const lines = yamlText.split("\n");
    const at = lines.findIndex((l) => l.includes("connect_timeout: 1s")); // the first cluster's
    lines[at] = lines[at]!.replace("connect_timeout", "connect_timout");
    const { issues } = validateEnvoyConfig(schema, lines.join("\n"));
    expect(issues.map(formatIssue)).toEqual([`static_resources.clusters[0].connect_timout: unknown field (not in envoy.config.cluster.v3.Cluster); did you mean "connect_timeout"? (line ${at + 1})`]);
  });

  it("collects every problem, not only the first", () => {
    const doc = parseDocument(yamlText);
    doc.setIn([...socket1, "port_value"], 70000);
    doc.setIn(["static_resources", "clusters", 0, "name"], "");
    const { issues } = validateEnvoyConfig(schema, doc);
    expect(issues.map(formatIssue)).toEqual([
      "static_resources.clusters[0].name: must not be empty",
      "static_resources.clusters[1].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value: must be <= 65535",
    ]);
  });
});

describe("envoy.yaml and the contracts", () => {
  it("has a cluster for every service in the contracts", () => {
    expect(Object.keys(SERVICE_CLUSTERS).sort()).toEqual(contracts.services.map((s) => s.name).sort());
  });

  it("routes every gRPC method to its service's cluster", () => {
    const routes = edgeRoutes();
    const routed = methods().map((m) => [m.grpcPath, matchRoute(routes, m.grpcPath)?.route?.cluster]);
    expect(routed).toEqual(methods().map((m) => [m.grpcPath, SERVICE_CLUSTERS[m.service]]));
  });

  it("routes every REST binding to the cluster of its RPC's service, not to the web app", () => {
    const routes = edgeRoutes();
    const rest = methods().flatMap((m) => m.http.map((b) => ({ m, path: b.path.replace(/\{[^}]*\}/g, "some-id") })));
    expect(rest.length).toBeGreaterThan(0);
    for (const { m, path: p } of rest) {
      expect([p, matchRoute(routes, p)?.route?.cluster]).toEqual([p, SERVICE_CLUSTERS[m.service]]);
    }
  });

  it("sends every routed cluster to a service over HTTP/2 with gRPC health checks", () => {
    for (const route of edgeRoutes()) {
      const name = route.route?.cluster;
      expect(name, `route ${route.name} must route to a cluster`).toBeDefined();
      const cluster = clusterByName(config, name!);
      expect(cluster, `cluster ${name}`).toBeDefined();
      const service = Object.entries(SERVICE_CLUSTERS).find(([, c]) => c === name)?.[0];
      const http = cluster!.typed_extension_protocol_options?.["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
      expect(http?.["@type"]).toBe("type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions");
      if (service) {
        expect(Object.keys(http!.explicit_http_config ?? {}), name).toEqual(["http2_protocol_options"]);
        expect(cluster!.health_checks?.map((h) => h.grpc_health_check?.service_name), name).toEqual([service]);
        expect(cluster!.type, name).toBe("STRICT_DNS");
        expect(cluster!.circuit_breakers?.thresholds?.length, name).toBeGreaterThan(0);
        expect(cluster!.outlier_detection, name).toBeDefined();
      } else {
        // Only the static web app is not a gRPC service.
        expect(name).toBe("web");
        expect(cluster!.health_checks?.[0]?.http_health_check).toBeDefined();
      }
    }
  });

  it("has the HTTP filters in the required order, router last", () => {
    expect(edge().http_filters.map((f) => [f.name, f.typed_config?.["@type"]])).toEqual(FILTER_ORDER);
  });

  it("retries only read-only (NO_SIDE_EFFECTS) methods, each on its own exact route", () => {
    const routes = edgeRoutes();
    expect(edge().route_config.virtual_hosts.every((h) => h.retry_policy === undefined)).toBe(true);
    const readOnlyPaths = new Set(methods().filter((m) => m.readOnly).map((m) => m.grpcPath));
    for (const route of routes.filter((r) => r.route?.retry_policy)) {
      expect(Object.keys(route.match), route.name).toEqual(["path"]);
      expect(readOnlyPaths.has(route.match.path!), `${route.name} retries ${route.match.path}, which is not NO_SIDE_EFFECTS`).toBe(true);
    }
    for (const m of methods()) {
      const policy = matchRoute(routes, m.grpcPath)?.route?.retry_policy;
      if (!m.readOnly) {
        expect(policy, `${m.fullName} has side effects and must not be retried`).toBeUndefined();
        continue;
      }
      expect(policy, `${m.fullName} is read-only and should be retried`).toBeDefined();
      expect(policy!.retry_on!.split(",").sort()).toEqual(["connect-failure", "reset", "unavailable"]);
      expect(policy!.num_retries).toBeGreaterThanOrEqual(1);
      expect(policy!.num_retries).toBeLessThanOrEqual(3);
    }
  });

  it("lets server streams live without a route timeout, but bounded", () => {
    const streams = methods().filter((m) => m.kind === "server_streaming");
    expect(streams.map((m) => m.fullName)).toContain("myevents.v1.NotificationService.Subscribe");
    for (const m of streams) {
      const paths = [m.grpcPath, ...m.http.map((b) => b.path.replace(/\{[^}]*\}/g, "x"))];
      for (const p of paths) {
        const action = matchRoute(edgeRoutes(), p)?.route;
        expect(action?.timeout, p).toBe("0s");
        expect(parseFloat(action?.max_stream_duration?.max_stream_duration ?? "0"), p).toBeGreaterThan(0);
      }
    }
  });

  it("exposes no health, reflection or admin endpoint through the edge", () => {
    const routes = edgeRoutes();
    const internal = [
      "/grpc.health.v1.Health/Check",
      "/grpc.health.v1.Health/Watch",
      "/grpc.health.v1.Health/List",
      "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ];
    // They fall through to the static web app, never to a service.
    for (const p of internal) expect([p, matchRoute(routes, p)?.route?.cluster]).toEqual([p, "web"]);
    for (const route of routes) {
      expect(route.route, `${route.name}: only plain routes (no redirects or direct responses)`).toBeDefined();
      const { prefix_rewrite, regex_rewrite, host_rewrite_literal } = route.route!;
      expect([prefix_rewrite, regex_rewrite, host_rewrite_literal], `${route.name} rewrites the request`).toEqual([undefined, undefined, undefined]);
      for (const ep of endpointsOf(clusterByName(config, route.route!.cluster!)!)) {
        expect(ADMIN_PORTS, `${route.name} reaches ${ep.address}:${ep.port_value}`).not.toContain(ep.port_value);
        expect(ep.address, `${route.name} reaches a loopback address`).not.toMatch(/^(127\.|localhost$|::1$)/);
      }
    }
    // The admin interface itself listens on loopback only, and no listener takes an admin port.
    expect(config.admin.address.socket_address).toEqual({ address: "127.0.0.1", port_value: 9901 });
    for (const l of config.static_resources.listeners) expect(ADMIN_PORTS).not.toContain(l.address.socket_address.port_value);
  });

  it("exposes only /stats/prometheus on the metrics listener", () => {
    const metrics = config.static_resources.listeners.filter((l) => l.address.socket_address.port_value !== EDGE_PORT);
    expect(metrics.map((l) => l.address.socket_address.port_value)).toEqual([9902]);
    const routes = hcmOn(config, 9902).route_config.virtual_hosts.flatMap((h) => h.routes);
    expect(routes.map((r) => [r.match.path, r.match.prefix, r.route?.cluster])).toEqual([["/stats/prometheus", undefined, "envoy_admin"]]);
    expect(endpointsOf(clusterByName(config, "envoy_admin")!)).toEqual([config.admin.address.socket_address]);
  });

  it("transcodes exactly the contract services, strictly, from /etc/envoy/myevents.pb", () => {
    const transcoder = edge().http_filters.find((f) => f.name === "envoy.filters.http.grpc_json_transcoder")!.typed_config!;
    expect([...(transcoder.services as string[])].sort()).toEqual(contracts.services.map((s) => s.name).sort());
    expect(transcoder.proto_descriptor).toBe("/etc/envoy/myevents.pb");
    expect(transcoder.convert_grpc_status).toBe(true);
    expect(transcoder.request_validation_options).toMatchObject({ reject_unknown_method: true, reject_unknown_query_parameters: true });
    // The web app's catch-all switches the transcoder off (it would 404 every page).
    const web = matchRoute(edgeRoutes(), "/index.html")!;
    expect(web.typed_per_filter_config?.["envoy.filters.http.grpc_json_transcoder"]).toEqual({ "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", disabled: true });
  });

  it("allows the browser origins and the headers Connect, gRPC-Web and tracing need (CORS)", () => {
    const cors = edge().route_config.virtual_hosts[0]!.typed_per_filter_config?.["envoy.filters.http.cors"];
    expect(cors?.["@type"]).toBe("type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy");
    const list = (k: string) => String(cors?.[k]).split(",").map((s) => s.trim().toLowerCase());
    expect(cors?.allow_origin_string_match).toEqual(expect.arrayContaining([{ exact: "http://localhost:8080" }, { exact: "http://localhost:5173" }]));
    expect(list("allow_headers")).toEqual(
      expect.arrayContaining(["content-type", "connect-protocol-version", "connect-timeout-ms", "grpc-timeout", "x-grpc-web", "x-user-agent", "authorization", "traceparent"]),
    );
    expect(list("expose_headers")).toEqual(expect.arrayContaining(["grpc-status", "grpc-message", "grpc-status-details-bin"]));
    expect(list("allow_methods")).toEqual(expect.arrayContaining(["get", "post"]));
  });

  it("limits each client's request rate, enforced, answering RESOURCE_EXHAUSTED / 429", () => {
    const limit = edge().http_filters.find((f) => f.name === "envoy.filters.http.local_ratelimit")!.typed_config!;
    const all = { numerator: 100, denominator: "HUNDRED" };
    expect(limit).toMatchObject({
      local_rate_limit_per_downstream_connection: true,
      rate_limited_as_resource_exhausted: true,
      filter_enabled: { default_value: all },
      filter_enforced: { default_value: all },
    });
    // No status override: Envoy's default 429 is the REST answer.
    expect(limit.status).toBeUndefined();
    const bucket = limit.token_bucket as { max_tokens: number; tokens_per_fill: number; fill_interval: string };
    expect(bucket.max_tokens).toBeGreaterThanOrEqual(bucket.tokens_per_fill);
    expect(bucket.tokens_per_fill).toBeGreaterThan(0);
    expect(bucket.fill_interval).toMatch(/^\d+(\.\d+)?s$/);
  });

  it("ships an envoy/myevents.pb equal to a fresh build of proto/ (else run envoy/build-descriptor.sh)", async () => {
    const committed = await readFile(path.join(root, "envoy", "myevents.pb"));
    const fresh = await buildContractsDescriptor(root);
    if (Buffer.compare(committed, fresh) !== 0) {
      // Byte order may differ between buf versions; the content may not.
      const same = equals(FileDescriptorSetSchema, fromBinary(FileDescriptorSetSchema, committed), fromBinary(FileDescriptorSetSchema, fresh));
      expect(same, "envoy/myevents.pb is stale: run envoy/build-descriptor.sh and commit it").toBe(true);
    }
    // And it has what the transcoder needs: the services with their HTTP rules.
    const set = fromBinary(FileDescriptorSetSchema, committed);
    expect(set.file.map((f) => f.name)).toEqual(expect.arrayContaining(["google/api/annotations.proto", "google/api/http.proto", "google/protobuf/descriptor.proto"]));
    const services = set.file.flatMap((f) => f.service.map((s) => `${f.package}.${s.name}`));
    expect(services.sort()).toEqual(contracts.services.map((s) => s.name).sort());
  });
});
