// What the images run, run here: the Dockerfile's build step
// (scripts/build-dist.sh) compiles the sources, and each Node Deployment's
// process is started from that output with the environment the manifests
// give it (ports 0 instead of the fixed ones; embedded store and bus, since
// only the process itself is under test). Then the probes of the manifests
// are asked exactly as the kubelet would ask them, the metrics that the alert
// rules read are scraped, the memory is held against the limit, and SIGTERM
// must stop each process cleanly within its grace period.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/health/v1/health_pb.js";
import { deadLetterQueueName, queueName } from "../../services/messaging/amqp.js";
import { kustomizeBuild, type K8sObject } from "./k8s.js";
import { alertRules, promqlFacts } from "./promql.js";
import { root, run, TOOL_BUILD_TIMEOUT_MS } from "./tools.js";

/** Metrics the alert rules read that come from elsewhere than the services. */
const EXTERNAL_METRICS: Record<string, { source: string; labels: string[] }> = {
  up: { source: "Prometheus, per scrape target", labels: ["job", "instance"] },
  rabbitmq_queue_messages: { source: "RabbitMQ's rabbitmq_prometheus plugin (/metrics/per-object)", labels: ["vhost", "queue"] },
  kube_deployment_status_replicas_available: { source: "kube-state-metrics", labels: ["namespace", "deployment"] },
  kube_deployment_spec_replicas: { source: "kube-state-metrics", labels: ["namespace", "deployment"] },
};
/** The consumers that own a queue and a dead-letter queue (services/*\/app.ts, startBackbone). */
const CONSUMERS = ["events", "bookings"];

interface Probe {
  grpc?: { port: number; service?: string };
  httpGet?: { path: string; port: number | string };
}
interface Container {
  ports: { name: string; containerPort: number }[];
  env?: { name: string; value?: string }[];
  resources: { limits: { memory: string } };
  readinessProbe: Probe;
  livenessProbe: Probe;
  startupProbe: Probe;
  lifecycle: { preStop: { sleep: { seconds: number } } };
}
interface Deployment extends K8sObject {
  spec: { template: { spec: { terminationGracePeriodSeconds: number; containers: Container[] } } };
}

interface Running {
  name: string;
  child: ChildProcess;
  /** Container port name -> the port it really got. */
  ports: Record<string, number>;
  container: Container;
  grace: number;
  exit: Promise<number | null>;
}

const dockerfile = readFileSync(path.join(root, "deploy", "docker", "Dockerfile"), "utf8");
/** Dockerfile target -> its CMD's node arguments (options, then the file it runs). */
const commands = Object.fromEntries(
  [...dockerfile.matchAll(/^FROM runtime AS (\S+)\n(?:(?!^FROM ).*\n)*?CMD (\["node", [^\n]+\])$/gm)].map((m) => [m[1]!, (JSON.parse(m[2]!) as string[]).slice(1)]),
);
/** Dockerfile target -> the file its CMD runs. */
const entrypoints = Object.fromEntries(Object.entries(commands).map(([target, args]) => [target, args.at(-1)!]));

let dist: string;
let objects: K8sObject[];
const running: Record<string, Running> = {};

/** The operator's Secret's jwt-secret: one for the whole mesh. */
const JWT_SECRET = randomBytes(48).toString("base64");

/** JWT_SECRET where the container takes it from the Secret. */
function jwtSecret(container: Container): Record<string, string> {
  const fromSecret = container.env?.some((e) => e.name === "JWT_SECRET" && (e as { valueFrom?: unknown }).valueFrom);
  return fromSecret ? { JWT_SECRET } : {};
}

function start(name: string, env: Record<string, string>): Promise<Running> {
  const d = objects.find((o): o is Deployment => o.kind === "Deployment" && o.metadata.name === name)!;
  const container = d.spec.template.spec.containers[0]!;
  const config = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("myevents-config-")) as K8sObject & { data: Record<string, string> };
  const explicit = Object.fromEntries((container.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
  // The image's command: its node options, then its file in the build.
  const child = spawn(process.execPath, [...commands[name]!.slice(0, -1), path.join(dist, entrypoints[name]!)], {
    cwd: dist,
    // Only what the manifests set (no MONGODB_URL or AMQP_URL: embedded store and bus),
    // and a JWT secret where the Deployment takes one from the operator's Secret.
    env: { PATH: process.env.PATH!, NODE_ENV: "production", NODE_OPTIONS: "--enable-source-maps", ...config.data, ...explicit, ...jwtSecret(container), PORT: "0", ADMIN_PORT: "0", HOST: "127.0.0.1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const output: string[] = [];
  child.stderr!.on("data", (chunk: Buffer) => output.push(chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${output.join("")}`)), 30_000);
    exit.then((code) => reject(new Error(`${name} exited with ${code}:\n${output.join("")}`)));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      output.push(line + "\n");
      const entry = JSON.parse(line) as { msg?: string; port?: number; admin_port?: number };
      if (entry.msg !== "serving") return;
      clearTimeout(timer);
      const apiPortName = container.ports.find((p) => p.name !== "admin")!.name;
      resolve({ name, child, container, grace: d.spec.template.spec.terminationGracePeriodSeconds, exit, ports: { [apiPortName]: entry.port!, admin: entry.admin_port! } });
    });
  });
}

beforeAll(async () => {
  objects = kustomizeBuild("deploy/k8s");
  // The image layout: /app with package.json, node_modules and the compiled tree.
  dist = mkdtempSync(path.join(tmpdir(), "myevents-dist-"));
  run("sh", [path.join(root, "scripts", "build-dist.sh"), dist]);
  writeFileSync(path.join(dist, "package.json"), readFileSync(path.join(root, "package.json")));
  symlinkSync(path.join(root, "node_modules"), path.join(dist, "node_modules"));

  const hasNotifications = existsSync(path.join(dist, entrypoints.notifications ?? "-"));
  running.events = await start("events", {});
  running.bookings = await start("bookings", { EVENTS_URL: `http://127.0.0.1:${running.events.ports.grpc}` });
  if (hasNotifications) running.notifications = await start("notifications", { EVENTS_URL: `http://127.0.0.1:${running.events.ports.grpc}`, BOOKINGS_URL: `http://127.0.0.1:${running.bookings.ports.grpc}` });
  running.gateway = await start("gateway", {
    EVENTS_URL: `http://127.0.0.1:${running.events.ports.grpc}`,
    BOOKINGS_URL: `http://127.0.0.1:${running.bookings.ports.grpc}`,
    NOTIFICATIONS_URL: hasNotifications ? `http://127.0.0.1:${running.notifications!.ports.grpc}` : "none",
    WEB_ROOT: path.join(dist, "no-web-app"),
  });
}, TOOL_BUILD_TIMEOUT_MS);

afterAll(async () => {
  for (const r of Object.values(running)) r.child.kill("SIGKILL");
  if (dist) rmSync(dist, { recursive: true, force: true });
});

/** Asks a probe as the kubelet does; true when it passes. */
async function probe(r: Running, p: Probe): Promise<boolean> {
  if (p.grpc) {
    // The probe names the container port by number; here the port is a free one.
    const portName = r.container.ports.find((x) => x.containerPort === p.grpc!.port)!.name;
    const health = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${r.ports[portName]}` }));
    const res = await health.check({ service: p.grpc.service ?? "" }, { timeoutMs: 2000 });
    return res.status === ServingStatus.SERVING;
  }
  const portName = typeof p.httpGet!.port === "string" ? p.httpGet!.port : r.container.ports.find((x) => x.containerPort === p.httpGet!.port)!.name;
  const res = await fetch(`http://127.0.0.1:${r.ports[portName]}${p.httpGet!.path}`);
  return res.status >= 200 && res.status < 400;
}

/** Metric families and the label names of their samples, from /metrics. */
async function scrape(r: Running): Promise<Map<string, Set<string>>> {
  const text = await (await fetch(`http://127.0.0.1:${r.ports.admin}/metrics`)).text();
  const families = new Map<string, Set<string>>();
  for (const [, name] of text.matchAll(/^# TYPE (\S+) \S+$/gm)) families.set(name!, new Set());
  for (const [, name, labels] of text.matchAll(/^([a-zA-Z_:][\w:]*)\{([^}]*)\} /gm)) {
    const family = families.get(name!) ?? families.get(name!.replace(/_(bucket|sum|count)$/, ""));
    for (const [, label] of labels!.matchAll(/(\w+)="/g)) family?.add(label!);
  }
  return families;
}

describe("deploy/docker/Dockerfile", () => {
  const stages = dockerfile.split(/^(?=FROM )/m).filter((s) => s.startsWith("FROM "));
  const stage = (name: string) => stages.find((s) => new RegExp(`^FROM \\S+ AS ${name}\\n`).test(s))!;

  it("installs production dependencies only into what the images ship, and builds in a separate stage", () => {
    expect(stage("deps")).toMatch(/^RUN npm ci --omit=dev /m);
    expect(stage("build")).toMatch(/^FROM deps AS build$/m);
    expect(stage("build")).toContain("scripts/build-dist.sh");
    // The runtime copies node_modules from deps (not build) and the compiled tree from build.
    expect(stage("runtime")).toContain("COPY --from=deps /app/node_modules ./node_modules");
    expect(stage("runtime")).toContain("COPY --from=build /app/dist ./");
    expect(stage("runtime")).not.toMatch(/^COPY (services|gateway|gen)\b/m);
  });

  it("runs every final image as a numeric non-root user, with a health check, and bakes in no credentials", () => {
    for (const target of [...Object.keys(entrypoints), "web"]) {
      // The user is set in the stage itself or in the one it derives from.
      const own = stage(target);
      const base = /^FROM (\S+) AS/.exec(own)![1]!;
      const text = base === "runtime" ? stage("runtime") + own : own;
      const users = [...text.matchAll(/^USER (\S+)$/gm)].map((m) => m[1]!);
      expect(users.at(-1), target).toMatch(/^[1-9]\d*:[1-9]\d*$/);
      expect(text, target).toMatch(/^HEALTHCHECK /m);
    }
    for (const [, name] of dockerfile.matchAll(/^(?:ENV|ARG) ([^\n]*)$/gm)) {
      expect(name, "no credentials in the image").not.toMatch(/SECRET|PASSWORD|TOKEN|MONGODB_URL|AMQP_URL|:\/\/[^@\s]+@/i);
    }
  });
});

describe("the images' processes (compiled by scripts/build-dist.sh, configured by deploy/k8s)", () => {
  it("every Node image's CMD names a file the build produces", () => {
    expect(Object.keys(entrypoints).sort()).toEqual(["bookings", "events", "gateway", "notifications"]);
    for (const [target, file] of Object.entries(entrypoints)) {
      if (target === "notifications" && !existsSync(path.join(root, "services", "notifications"))) continue; // not built yet (issue: notifications)
      expect(existsSync(path.join(dist, file)), `${target}: ${file}`).toBe(true);
    }
  });

  it("passes its readiness, liveness and startup probes as the manifests define them", async () => {
    for (const r of Object.values(running)) {
      for (const kind of ["readinessProbe", "livenessProbe", "startupProbe"] as const) {
        expect(await probe(r, r.container[kind]), `${r.name} ${kind}`).toBe(true);
      }
    }
    // The service name in a gRPC probe matters: an unknown one is NotFound, not SERVING.
    const events = running.events!;
    await expect(probe(events, { grpc: { port: events.container.readinessProbe.grpc!.port, service: "myevents.v1.NoSuchService" } })).rejects.toThrow(/unknown service/);
  });

  it("exports every metric the alert rules read, with the labels they use", async () => {
    const families = new Map<string, Set<string>>();
    for (const r of Object.values(running)) {
      for (const [name, labels] of await scrape(r)) families.set(name, new Set([...(families.get(name) ?? []), ...labels]));
    }
    for (const rule of alertRules()) {
      const facts = promqlFacts(rule.expr);
      expect(facts.errors, rule.alert).toEqual([]);
      expect(facts.selectors.length, rule.alert).toBeGreaterThan(0);
      const labelsOf = (metric: string) => families.get(metric) ?? new Set(EXTERNAL_METRICS[metric]?.labels);
      for (const { metric, labels } of facts.selectors) {
        expect(families.has(metric) || metric in EXTERNAL_METRICS, `${rule.alert}: ${metric} is neither exported by a service nor a known external metric`).toBe(true);
        for (const label of labels) expect([...labelsOf(metric)], `${rule.alert}: ${metric}{${label}}`).toContain(label);
      }
      for (const label of facts.grouping) {
        expect(facts.selectors.some(({ metric }) => labelsOf(metric).has(label)), `${rule.alert}: by (${label})`).toBe(true);
      }
    }
  });

  it("the dead-letter alert watches exactly the consumers' dead-letter queues", () => {
    const rule = alertRules().find((r) => r.alert === "MyEventsDeadLetters")!;
    const [, pattern] = /queue=~"((?:[^"\\]|\\.)*)"/.exec(rule.expr)!;
    // PromQL regexes are anchored; the YAML string escapes are already gone.
    const re = new RegExp(`^(?:${pattern!.replace(/\\\\/g, "\\")})$`);
    for (const c of CONSUMERS) {
      expect(re.test(deadLetterQueueName(c)), deadLetterQueueName(c)).toBe(true);
      expect(re.test(queueName(c)), queueName(c)).toBe(false);
    }
  });

  it("fits in the memory limit of its container", () => {
    const bytes = (q: string) => Number(/^(\d+)Mi$/.exec(q)![1]) * 2 ** 20;
    for (const r of Object.values(running)) {
      const rss = Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${r.child.pid}/status`, "utf8"))![1]) * 1024;
      expect(rss, `${r.name} RSS`).toBeLessThan(bytes(r.container.resources.limits.memory));
    }
  });

  it("stops on SIGTERM with exit code 0 within the grace period the kubelet gives it after preStop", async () => {
    // Clients first, then what they call.
    for (const name of ["gateway", "notifications", "bookings", "events"].filter((n) => running[n])) {
      const r = running[name]!;
      const budgetMs = (r.grace - r.container.lifecycle.preStop.sleep.seconds) * 1000;
      r.child.kill("SIGTERM");
      const code = await Promise.race([r.exit, new Promise<string>((resolve) => setTimeout(resolve, budgetMs, "still running"))]);
      expect(code, name).toBe(0);
    }
  }, 120_000);
});
