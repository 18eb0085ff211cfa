// envoy/envoy.yaml as plain data, typed for the parts the cross-checks read,
// plus Envoy's route matching for the match kinds the edge uses. The schema
// check (envoy-schema.ts) proves the file is a valid Bootstrap; these
// helpers let the tests ask what it does.
import { readFileSync } from "node:fs";
import path from "node:path";
import { parse } from "yaml";

export const ENVOY_YAML = path.join("envoy", "envoy.yaml");
export const EDGE_PORT = 8080;

export interface SocketAddress {
  address: string;
  port_value: number;
}

export interface RouteAction {
  cluster?: string;
  timeout?: string;
  prefix_rewrite?: string;
  regex_rewrite?: unknown;
  host_rewrite_literal?: string;
  retry_policy?: { retry_on?: string; num_retries?: number };
  max_stream_duration?: { max_stream_duration?: string; grpc_timeout_header_max?: string };
}

export interface Route {
  name?: string;
  match: {
    prefix?: string;
    path?: string;
    path_separated_prefix?: string;
    safe_regex?: { regex: string };
    [other: string]: unknown;
  };
  route?: RouteAction;
  typed_per_filter_config?: Record<string, { "@type": string; disabled?: boolean }>;
  [other: string]: unknown;
}

export interface VirtualHost {
  name: string;
  domains: string[];
  routes: Route[];
  retry_policy?: unknown;
  typed_per_filter_config?: Record<string, Record<string, unknown>>;
}

export interface HttpFilter {
  name: string;
  typed_config?: { "@type": string; [k: string]: unknown };
}

export interface HttpConnectionManager {
  "@type": string;
  http_filters: HttpFilter[];
  route_config: { name: string; virtual_hosts: VirtualHost[] };
}

export interface Listener {
  name: string;
  address: { socket_address: SocketAddress };
  filter_chains: { filters: { name: string; typed_config: HttpConnectionManager }[] }[];
}

export interface Cluster {
  name: string;
  type?: string;
  typed_extension_protocol_options?: Record<string, { "@type": string; explicit_http_config?: Record<string, unknown> }>;
  load_assignment: { endpoints: { lb_endpoints: { endpoint: { address: { socket_address: SocketAddress } } }[] }[] };
  health_checks?: { grpc_health_check?: { service_name?: string }; http_health_check?: { path: string } }[];
  circuit_breakers?: { thresholds?: unknown[] };
  outlier_detection?: unknown;
}

export interface EnvoyConfig {
  admin: { address: { socket_address: SocketAddress } };
  static_resources: { listeners: Listener[]; clusters: Cluster[] };
}

export function readEnvoyYaml(root = process.cwd()): string {
  return readFileSync(path.join(root, ENVOY_YAML), "utf8");
}

export function loadEnvoyConfig(root = process.cwd()): EnvoyConfig {
  return parse(readEnvoyYaml(root), { maxAliasCount: -1 }) as EnvoyConfig;
}

/** The HTTP connection manager of the listener on `port`. */
export function hcmOn(config: EnvoyConfig, port: number): HttpConnectionManager {
  const listener = config.static_resources.listeners.find((l) => l.address.socket_address.port_value === port);
  if (!listener) throw new Error(`no listener on port ${port}`);
  const filters = listener.filter_chains.flatMap((c) => c.filters);
  const hcm = filters.find((f) => f.name === "envoy.filters.network.http_connection_manager");
  if (!hcm || filters.length !== 1 || listener.filter_chains.length !== 1) throw new Error(`listener ${listener.name}: expected one chain with one HTTP connection manager`);
  return hcm.typed_config;
}

export function clusterByName(config: EnvoyConfig, name: string): Cluster | undefined {
  return config.static_resources.clusters.find((c) => c.name === name);
}

export function endpointsOf(cluster: Cluster): SocketAddress[] {
  return cluster.load_assignment.endpoints.flatMap((e) => e.lb_endpoints.map((l) => l.endpoint.address.socket_address));
}

const MATCH_KINDS = ["prefix", "path", "path_separated_prefix", "safe_regex"] as const;

/**
 * The first route whose path matcher accepts `requestPath`, as Envoy picks
 * it (first match wins; the query string is not part of the match). Throws
 * on matchers this model does not cover, so a route using them cannot
 * pass the checks by accident.
 */
export function matchRoute(routes: readonly Route[], requestPath: string): Route | undefined {
  const p = requestPath.split("?")[0]!;
  for (const route of routes) {
    const kinds = Object.keys(route.match);
    const unsupported = kinds.filter((k) => !(MATCH_KINDS as readonly string[]).includes(k));
    if (unsupported.length > 0) throw new Error(`route ${route.name ?? "?"}: matcher fields ${unsupported.join(", ")} are not modelled by matchRoute`);
    const m = route.match;
    const hit =
      (m.prefix !== undefined && p.startsWith(m.prefix)) ||
      (m.path !== undefined && p === m.path) ||
      (m.path_separated_prefix !== undefined && (p === m.path_separated_prefix || p.startsWith(`${m.path_separated_prefix}/`))) ||
      (m.safe_regex !== undefined && new RegExp(`^(?:${m.safe_regex.regex})$`).test(p));
    if (hit) return route;
  }
  return undefined;
}
