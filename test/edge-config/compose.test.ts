// deploy/docker-compose.yml, checked offline (no Docker engine here): pinned
// images, complete environments (the variables the services actually read),
// ports as DESIGN.md fixes them and as envoy.yaml expects them, health-gated
// start order, and Prometheus scraping every admin port.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { clusterByName, EDGE_PORT, endpointsOf, hcmOn, loadEnvoyConfig } from "./envoy-config.js";

const root = process.cwd();
const deployDir = path.join(root, "deploy");

/** The runtime surface of DESIGN.md: API and admin port per component. */
const DESIGN_PORTS: Record<string, { api: number; admin: number }> = {
  events: { api: 50051, admin: 9101 },
  bookings: { api: 50052, admin: 9102 },
  notifications: { api: 50053, admin: 9103 },
  gateway: { api: 8080, admin: 9100 },
  envoy: { api: 8080, admin: 9901 },
};
/** Envoy cluster -> the compose service behind it. */
const CLUSTER_SERVICES: Record<string, string> = {
  event_service: "events",
  booking_service: "bookings",
  notification_service: "notifications",
  web: "web",
};
/** What a service needs before its own app.ts exists (DESIGN.md). */
const PLANNED_ENV: Record<string, string[]> = { notifications: ["PORT", "ADMIN_PORT", "AMQP_URL", "JWT_SECRET"] };

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string; target?: string };
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  ports?: string[];
  volumes?: string[];
}

const compose = parse(readFileSync(path.join(deployDir, "docker-compose.yml"), "utf8")) as { services: Record<string, ComposeService> };
const services = compose.services;
const dockerfile = readFileSync(path.join(deployDir, "docker", "Dockerfile"), "utf8");
const prometheus = parse(readFileSync(path.join(deployDir, "prometheus", "prometheus.yml"), "utf8")) as {
  scrape_configs: { job_name: string; metrics_path?: string; static_configs: { targets: string[] }[] }[];
};
const envoy = loadEnvoyConfig(root);

/** Compose services that run one of our Node services (built from a Dockerfile target of that name). */
const nodeServices = Object.entries(services).filter(([name, s]) => s.build?.target === name && name in DESIGN_PORTS);

/** Environment variables a service reads: its app.ts read*Config plus the shared runtime config. */
function variablesRead(service: string): string[] | undefined {
  const app = path.join(root, "services", service, "app.ts");
  if (!existsSync(app)) return undefined;
  const runtime = readFileSync(path.join(root, "services", "runtime", "config.ts"), "utf8");
  const readRuntime = runtime.slice(runtime.indexOf("export function readRuntimeConfig"));
  const auth = readFileSync(path.join(root, "services", "runtime", "auth", "config.ts"), "utf8");
  const names = new Set<string>();
  for (const text of [readFileSync(app, "utf8"), readRuntime, auth]) {
    for (const m of text.matchAll(/env\.\w+\(\s*(?:"([A-Z][A-Z0-9_]*)"|`\$\{\w+\}([A-Z][A-Z0-9_]*)`)/g)) names.add((m[1] ?? m[2])!);
  }
  return [...names].sort();
}

/** Whether a service reads MONGODB_URL (planned services: as DESIGN.md plans them). */
function usesMongo(service: string): boolean {
  return (variablesRead(service) ?? PLANNED_ENV[service] ?? []).includes("MONGODB_URL");
}

describe("deploy/docker-compose.yml", () => {
  it("pins every image to a version (no latest, no bare names), here and in the Dockerfile", () => {
    // name:tag with a version number in the tag (and optionally a digest), or name@digest.
    const pinned = /^[a-z0-9./_-]+(:(?!latest$)[A-Za-z0-9._-]*\d[A-Za-z0-9._-]*)(@sha256:[a-f0-9]{64})?$|^[a-z0-9./_-]+@sha256:[a-f0-9]{64}$/;
    for (const bad of ["mongo", "mongo:latest", "rabbitmq:management", "envoyproxy/envoy:contrib-dev"]) expect(bad).not.toMatch(pinned);
    for (const [name, s] of Object.entries(services)) {
      expect(s.image !== undefined || s.build !== undefined, `${name} needs an image or a build`).toBe(true);
      if (s.image) expect(s.image, `${name}'s image`).toMatch(pinned);
    }
    // Base images of the Dockerfile: FROM an ARG default or a literal image.
    const args = Object.fromEntries([...dockerfile.matchAll(/^ARG (\w+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
    const stages = new Set([...dockerfile.matchAll(/^FROM \S+ AS (\S+)$/gm)].map((m) => m[1]!));
    for (const [, from] of dockerfile.matchAll(/^FROM (\S+)/gm)) {
      const image = from!.replace(/^\$\{(\w+)\}$/, (_, a: string) => args[a] ?? from!);
      if (!stages.has(image)) expect(image, `FROM ${from}`).toMatch(pinned);
    }
  });

  it("builds each Node service from its own Dockerfile target, as non-root, running its compiled main", () => {
    expect(nodeServices.map(([n]) => n).sort()).toEqual(["bookings", "events", "notifications"]);
    // The shared runtime stage runs as a numeric non-root user (Kubernetes'
    // runAsNonRoot can only verify a number); test/deploy/ checks the rest.
    expect(dockerfile).toMatch(/^FROM \$\{NODE_IMAGE\} AS runtime\n[\s\S]*?^USER [1-9]\d*:[1-9]\d*$/m);
    for (const [name, s] of nodeServices) {
      expect(s.build!.dockerfile).toBe("deploy/docker/Dockerfile");
      expect(path.resolve(deployDir, s.build!.context)).toBe(root);
      const stage = new RegExp(`^FROM runtime AS ${name}\\n(?:(?!^FROM ).*\\n)*?CMD \\["node", (?:"--[^"]+", )*"services/${name}/main.js"\\]$`, "m");
      expect(dockerfile, `stage ${name}`).toMatch(stage);
    }
  });

  it("gives every service the environment it reads, pointing at compose services", () => {
    for (const [name, s] of nodeServices) {
      const env = s.environment ?? {};
      const read = variablesRead(name);
      // Addresses of backing services and peers, and the ports, must be explicit.
      // (JWT_JWKS_URL is the alternative to JWT_SECRET, which every service needs.)
      const required = read
        ? read.filter((v) => (v.endsWith("_URL") && v !== "JWT_JWKS_URL") || v === "PORT" || v === "ADMIN_PORT" || v === "JWT_SECRET")
        : PLANNED_ENV[name]!;
      expect(required.filter((v) => !(v in env)), `${name} lacks`).toEqual([]);
      // ... and nothing it does not read (a typo would silently fall back to a default).
      if (read) expect(Object.keys(env).filter((v) => !read.includes(v) && !v.startsWith("NODE_")), `${name} sets unknown variables`).toEqual([]);
      for (const [key, value] of Object.entries(env).filter(([k]) => k.endsWith("_URL"))) {
        const url = new URL(value);
        expect(Object.keys(services), `${name}.${key} host`).toContain(url.hostname);
        const peer = DESIGN_PORTS[url.hostname];
        if (peer && key === `${url.hostname.toUpperCase()}_URL`) expect(Number(url.port), `${name}.${key} port`).toBe(peer.api);
      }
      // The notifications service keeps nothing and has no database.
      if (usesMongo(name)) expect(env.MONGODB_URL, name).toMatch(/^mongodb:\/\/mongo:27017/);
      expect(env.AMQP_URL, name).toMatch(/^amqp:\/\/[^@]+@rabbitmq:5672/);
    }
  });

  it("uses the ports of DESIGN.md", () => {
    for (const [name, s] of nodeServices) {
      expect([name, Number(s.environment!.PORT), Number(s.environment!.ADMIN_PORT)]).toEqual([name, DESIGN_PORTS[name]!.api, DESIGN_PORTS[name]!.admin]);
      expect(dockerfile, `${name}'s image defaults`).toContain(`ENV PORT=${DESIGN_PORTS[name]!.api} ADMIN_PORT=${DESIGN_PORTS[name]!.admin}`);
    }
    // Envoy: the edge on 8080 (published), the admin on 9901 inside.
    expect(services.envoy!.ports).toEqual([`${DESIGN_PORTS.envoy!.api}:${EDGE_PORT}`]);
    expect(envoy.admin.address.socket_address.port_value).toBe(DESIGN_PORTS.envoy!.admin);
    // No admin or service port is published to the host.
    const published = Object.values(services).flatMap((s) => s.ports ?? []).map((p) => Number(p.split(":").at(-2)));
    for (const { api, admin } of Object.values(DESIGN_PORTS).filter((p) => p.api !== EDGE_PORT)) {
      expect(published).not.toContain(api);
      expect(published).not.toContain(admin);
    }
  });

  it("agrees with envoy.yaml: every cluster endpoint is a compose service on the port it listens on", () => {
    for (const [cluster, service] of Object.entries(CLUSTER_SERVICES)) {
      const c = clusterByName(envoy, cluster);
      expect(c, cluster).toBeDefined();
      const s = services[service];
      expect(s, `compose service ${service}`).toBeDefined();
      const expected = service === "web" ? Number(/listen (\d+);/.exec(readFileSync(path.join(deployDir, "web", "nginx.conf"), "utf8"))![1]) : Number(s!.environment!.PORT);
      expect(endpointsOf(c!)).toEqual([{ address: service, port_value: expected }]);
    }
    // And every Envoy cluster is either one of these or the loopback admin.
    expect(envoy.static_resources.clusters.map((c) => c.name).sort()).toEqual([...Object.keys(CLUSTER_SERVICES), "envoy_admin"].sort());
  });

  it("mounts envoy.yaml and the descriptor set where Envoy and the transcoder read them", () => {
    const transcoder = hcmOn(envoy, EDGE_PORT).http_filters.find((f) => f.name === "envoy.filters.http.grpc_json_transcoder")!;
    const mounts = Object.fromEntries((services.envoy!.volumes ?? []).map((v) => v.split(":")).map(([from, to]) => [to!, path.resolve(deployDir, from!)]));
    expect(mounts["/etc/envoy/envoy.yaml"]).toBe(path.join(root, "envoy", "envoy.yaml"));
    expect(mounts[transcoder.typed_config!.proto_descriptor as string]).toBe(path.join(root, "envoy", "myevents.pb"));
    for (const file of Object.values(mounts)) expect(existsSync(file), file).toBe(true);
  });

  it("starts in health order: every service_healthy dependency has a real healthcheck", () => {
    for (const [name, s] of Object.entries(services)) {
      for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
        expect(services[dep], `${name} depends on unknown service ${dep}`).toBeDefined();
        expect(["service_healthy", "service_started", "service_completed_successfully"]).toContain(condition);
        if (condition === "service_healthy") expect(services[dep]!.healthcheck, `${name} waits for ${dep} to be healthy`).toBeDefined();
      }
    }
    const test = (name: string) => services[name]!.healthcheck!.test.join(" ");
    expect(test("mongo")).toMatch(/mongosh .*ping/);
    expect(test("rabbitmq")).toMatch(/rabbitmq-diagnostics .*ping/);
    for (const [name, s] of nodeServices) {
      expect(test(name)).toContain(`http://127.0.0.1:${s.environment!.ADMIN_PORT}/readyz`);
      expect(s.depends_on?.mongo?.condition, name).toBe(usesMongo(name) ? "service_healthy" : undefined);
      expect(s.depends_on?.rabbitmq?.condition, name).toBe("service_healthy");
    }
    expect(services.bookings!.depends_on?.events?.condition).toBe("service_healthy");
    for (const dep of ["events", "bookings", "web"]) expect(services.envoy!.depends_on?.[dep]?.condition, `envoy waits for ${dep}`).toBe("service_healthy");
  });

  it("has Prometheus scrape every admin port, and Envoy's metrics listener", () => {
    const targets = prometheus.scrape_configs.flatMap((j) => j.static_configs.flatMap((c) => c.targets.map((t) => ({ job: j.job_name, target: t, path: j.metrics_path ?? "/metrics" }))));
    const scraped = (target: string) => targets.find((t) => t.target === target);
    for (const [name, s] of nodeServices) expect(scraped(`${name}:${s.environment!.ADMIN_PORT}`)?.path, name).toBe("/metrics");
    if (services.gateway) expect(scraped(`gateway:${DESIGN_PORTS.gateway!.admin}`)?.path).toBe("/metrics");
    // Envoy's admin is loopback-only; its metrics listener serves exactly /stats/prometheus.
    const metricsListener = envoy.static_resources.listeners.find((l) => l.address.socket_address.port_value !== EDGE_PORT)!;
    const metricsRoute = hcmOn(envoy, metricsListener.address.socket_address.port_value).route_config.virtual_hosts[0]!.routes[0]!;
    expect(scraped(`envoy:${metricsListener.address.socket_address.port_value}`)?.path).toBe(metricsRoute.match.path);
    expect(services.prometheus!.volumes).toContain("./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro");
    // Nothing else: every target is one of ours.
    expect(targets.map((t) => t.target.split(":")[0]).every((host) => host! in services)).toBe(true);
  });
});
