// deploy/k8s (the kustomize base, MongoDB) and deploy/k8s-overlays/ferretdb,
// rendered by kustomize and checked offline: the Kubernetes API schema (two
// ways, see k8s.ts), the hardening the pods must have, probes that point at
// what the processes really serve, graceful termination longer than the
// drain, a Service, PodDisruptionBudget and autoscaler per Deployment,
// environment and secrets, Envoy's ConfigMap, and the NetworkPolicy matrix.
import { readFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { BookingService } from "../../gen/myevents/v1/booking_service_pb.js";
import { EventService } from "../../gen/myevents/v1/event_service_pb.js";
import { NotificationService } from "../../gen/myevents/v1/notification_service_pb.js";
import { clusterByName, endpointsOf, hcmOn, loadEnvoyConfig } from "../edge-config/envoy-config.js";
import { describeObject, kustomizeBuild, schemaProblems, typeProblems, type K8sObject } from "./k8s.js";
import { networkPolicies, reachability, selects, type Endpoint } from "./network-policy.js";
import { NODE_COMPONENTS, variablesRead } from "./service-env.js";
import { root, tool, TOOL_BUILD_TIMEOUT_MS } from "./tools.js";

/** DESIGN.md's runtime surface. */
const PORTS: Record<string, { api: number; admin: number }> = {
  events: { api: 50051, admin: 9101 },
  bookings: { api: 50052, admin: 9102 },
  notifications: { api: 50053, admin: 9103 },
  gateway: { api: 8080, admin: 9100 },
};
/** The gRPC service each API process serves, which its readiness probe asks about. */
const SERVED: Record<string, string> = {
  events: EventService.typeName,
  bookings: BookingService.typeName,
  notifications: NotificationService.typeName,
};
/** Variables a component will read once its code exists (the notifications branch keeps no database). */
const PLANNED_ENV: Record<string, string[]> = { notifications: ["PORT", "ADMIN_PORT", "AMQP_URL"] };
/** Variables the services will read once issue 6's authentication lands (services/runtime/auth). */
const PLANNED_EVERYWHERE = ["JWT_SECRET"];
/** What the Secret "myevents-secrets" must provide, by variable. */
const SECRET_VARIABLES: Record<string, string> = { MONGODB_URL: "mongodb-url", AMQP_URL: "amqp-url", JWT_SECRET: "jwt-secret" };
/** The single writers on FerretDB (README, "FerretDB and single writers"). */
const SINGLE_WRITERS = ["events", "bookings"];

interface Probe {
  grpc?: { port: number; service?: string };
  httpGet?: { path: string; port: number | string };
  tcpSocket?: { port: number | string };
  exec?: { command: string[] };
  periodSeconds?: number;
  failureThreshold?: number;
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports?: { name?: string; containerPort: number; protocol?: string }[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean }; configMapKeyRef?: { name: string; key: string } } }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean; runAsNonRoot?: boolean; runAsUser?: number; privileged?: boolean; capabilities?: { drop?: string[]; add?: string[] } };
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { sleep?: { seconds: number }; exec?: { command: string[] } } };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; runAsGroup?: number; seccompProfile?: { type: string } };
  automountServiceAccountToken?: boolean;
  enableServiceLinks?: boolean;
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  terminationGracePeriodSeconds?: number;
  topologySpreadConstraints?: { topologyKey: string; maxSkew: number; whenUnsatisfiable: string; labelSelector: { matchLabels: Record<string, string> } }[];
  volumes?: { name: string; emptyDir?: { sizeLimit?: string }; configMap?: { name: string } }[];
}
interface Deployment extends K8sObject {
  spec: {
    replicas?: number;
    selector: { matchLabels: Record<string, string> };
    strategy?: { type: string };
    template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec };
  };
}
interface Service extends K8sObject {
  spec: { clusterIP?: string; selector: Record<string, string>; ports: { name: string; port: number; targetPort: string | number; appProtocol?: string }[] };
}
interface Hpa extends K8sObject {
  spec: { scaleTargetRef: { apiVersion: string; kind: string; name: string }; minReplicas: number; maxReplicas: number };
}
interface Pdb extends K8sObject {
  spec: { selector: { matchLabels: Record<string, string> }; minAvailable?: number | string; maxUnavailable?: number | string };
}

/** "256Mi" -> bytes; "500m" -> 0.5. */
function quantity(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|k|M|G)?$/.exec(q);
  if (!m) throw new Error(`unexpected quantity ${q}`);
  const factor = { m: 1e-3, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, k: 1e3, M: 1e6, G: 1e9 }[m[2] ?? ""] ?? 1;
  return Number(m[1]) * factor;
}

const builds: Record<string, K8sObject[]> = {};
beforeAll(() => {
  builds.base = kustomizeBuild("deploy/k8s");
  builds.ferretdb = kustomizeBuild("deploy/k8s-overlays/ferretdb");
}, TOOL_BUILD_TIMEOUT_MS);

const ofKind = <T extends K8sObject>(objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind) as T[];
const deploymentsOf = (objects: K8sObject[]) => ofKind<Deployment>(objects, "Deployment");
const allContainers = (d: Deployment) => [...d.spec.template.spec.containers, ...(d.spec.template.spec.initContainers ?? [])];
const portNamed = (c: Container, name: string) => c.ports?.find((p) => p.name === name)?.containerPort;
const configMap = (objects: K8sObject[], prefix: string) => ofKind<K8sObject & { data?: Record<string, string>; binaryData?: Record<string, string> }>(objects, "ConfigMap").find((c) => c.metadata.name.startsWith(`${prefix}-`))!;

describe.each(["base", "ferretdb"])("deploy/k8s, kustomize build (%s)", (build) => {
  const objects = () => builds[build]!;
  const deployments = () => deploymentsOf(objects());

  it("renders the whole mesh into the myevents namespace", () => {
    expect(deployments().map((d) => d.metadata.name).sort()).toEqual(["bookings", "envoy", "events", "gateway", "notifications", "web"]);
    for (const o of objects()) {
      if (o.kind === "Namespace") expect(o.metadata.name).toBe("myevents");
      else expect(o.metadata.namespace, describeObject(o)).toBe("myevents");
      expect(o.metadata.labels?.["app.kubernetes.io/part-of"], describeObject(o)).toBe("myevents");
    }
  });

  it("matches the Kubernetes API schema (kubernetes-models) and has no unknown fields (kubernetes-types)", async () => {
    const problems = (await Promise.all(objects().map(schemaProblems))).flat();
    expect(problems).toEqual([]);
    expect(typeProblems(objects())).toEqual([]);
  });

  it("the schema checks reject broken objects", async () => {
    const d = structuredClone(deployments().find((x) => x.metadata.name === "events")!);
    const c = d.spec.template.spec.containers[0] as unknown as Record<string, unknown>;
    c.readinesProbe = c.readinessProbe; // a typo the API server would silently drop
    expect(typeProblems([d]).join("\n")).toMatch(/'"?readinesProbe"?' does not exist in type 'Container'/);
    (c.resources as { limits: Record<string, string> }).limits.memory = "lots";
    expect((await schemaProblems(d)).join("\n")).toMatch(/resources\/limits\/memory must match format "quantity"/);
  });

  it("runs every container unprivileged: non-root, read-only root filesystem, no capabilities, RuntimeDefault seccomp", () => {
    for (const d of deployments()) {
      const pod = d.spec.template.spec;
      const name = d.metadata.name;
      expect(pod.securityContext?.runAsNonRoot, name).toBe(true);
      expect(pod.securityContext?.runAsUser, name).toBeGreaterThan(0);
      expect(pod.securityContext?.runAsGroup, name).toBeGreaterThan(0);
      expect(pod.securityContext?.seccompProfile?.type, name).toBe("RuntimeDefault");
      expect([pod.hostNetwork, pod.hostPID, pod.hostIPC], name).toEqual([undefined, undefined, undefined]);
      // Nothing here talks to the Kubernetes API; no Service environment variables
      // (EVENTS_PORT=tcp://... would collide with the mesh's own variables).
      expect(pod.automountServiceAccountToken, name).toBe(false);
      expect(pod.enableServiceLinks, name).toBe(false);
      for (const c of allContainers(d)) {
        const sc = c.securityContext ?? {};
        expect(sc.allowPrivilegeEscalation, `${name}/${c.name}`).toBe(false);
        expect(sc.readOnlyRootFilesystem, `${name}/${c.name}`).toBe(true);
        expect(sc.privileged ?? false, `${name}/${c.name}`).toBe(false);
        expect(sc.capabilities?.drop, `${name}/${c.name}`).toEqual(["ALL"]);
        expect(sc.capabilities?.add ?? [], `${name}/${c.name}`).toEqual([]);
        expect(sc.runAsUser ?? pod.securityContext!.runAsUser, `${name}/${c.name}`).toBeGreaterThan(0);
        // A writable /tmp, and only that, from an emptyDir.
        const tmp = c.volumeMounts?.find((m) => m.mountPath === "/tmp");
        expect(pod.volumes?.find((v) => v.name === tmp?.name)?.emptyDir?.sizeLimit, `${name}/${c.name} /tmp`).toBeDefined();
        // Pinned images (the tag a release sets through kustomize `images:`).
        expect(c.image, `${name}/${c.name}`).toMatch(/^[a-z0-9./-]+:v?\d+\.\d+\.\d+$/);
      }
    }
    // And the namespace enforces the same at admission.
    const ns = ofKind(objects(), "Namespace")[0]!;
    expect(ns.metadata.labels?.["pod-security.kubernetes.io/enforce"]).toBe("restricted");
  });

  it("sets requests and limits, with the Node services' memory fitting the 150 MB RSS target", () => {
    for (const d of deployments()) {
      for (const c of allContainers(d)) {
        const { requests = {}, limits = {} } = c.resources ?? {};
        for (const r of ["cpu", "memory"]) {
          expect(requests[r], `${d.metadata.name} requests.${r}`).toBeDefined();
          expect(limits[r], `${d.metadata.name} limits.${r}`).toBeDefined();
          expect(quantity(limits[r]!), `${d.metadata.name} ${r}: limit >= request`).toBeGreaterThanOrEqual(quantity(requests[r]!));
        }
        if (d.metadata.name in NODE_COMPONENTS) {
          expect(quantity(requests.memory!)).toBeGreaterThanOrEqual(150 * 1e6);
          expect(quantity(limits.memory!)).toBeLessThanOrEqual(256 * 2 ** 20);
        }
      }
    }
  });

  it("probes each API service over gRPC health: readiness for its own service name, liveness for the process", () => {
    for (const [name, served] of Object.entries(SERVED)) {
      const c = deployments().find((d) => d.metadata.name === name)!.spec.template.spec.containers[0]!;
      expect(portNamed(c, "grpc"), name).toBe(PORTS[name]!.api);
      expect(portNamed(c, "admin"), name).toBe(PORTS[name]!.admin);
      // Ready only while the service answers SERVING for the API it serves.
      expect(c.readinessProbe?.grpc, name).toEqual({ port: PORTS[name]!.api, service: served });
      // Alive while the process answers at all (the service's status follows the
      // database and the broker; restarting during their outage helps nobody).
      expect(c.livenessProbe?.grpc, name).toEqual({ port: PORTS[name]!.api, service: "liveness" });
      expect(c.startupProbe?.httpGet, name).toEqual({ path: "/healthz", port: "admin" });
    }
    const gateway = deployments().find((d) => d.metadata.name === "gateway")!.spec.template.spec.containers[0]!;
    expect([portNamed(gateway, "http"), portNamed(gateway, "admin")]).toEqual([PORTS.gateway!.api, PORTS.gateway!.admin]);
    expect(gateway.readinessProbe?.httpGet).toEqual({ path: "/readyz", port: "admin" });
    expect(gateway.livenessProbe?.httpGet).toEqual({ path: "/healthz", port: "admin" });
    for (const d of deployments()) {
      for (const c of d.spec.template.spec.containers) {
        for (const kind of ["readinessProbe", "livenessProbe", "startupProbe"] as const) {
          const probe = c[kind];
          expect(probe, `${d.metadata.name} ${kind}`).toBeDefined();
          // Named ports must exist on the container; numbered ones too.
          const port = probe!.grpc?.port ?? probe!.httpGet?.port ?? probe!.tcpSocket?.port;
          if (port !== undefined) expect(c.ports?.some((p) => p.name === port || p.containerPort === port), `${d.metadata.name} ${kind} port ${port}`).toBe(true);
          else expect(probe!.exec?.command.length, `${d.metadata.name} ${kind}`).toBeGreaterThan(0);
        }
        // Kubernetes gives a pod failureThreshold x periodSeconds to start.
        expect(c.startupProbe!.failureThreshold! * c.startupProbe!.periodSeconds!, d.metadata.name).toBeGreaterThanOrEqual(30);
      }
    }
  });

  it("terminates gracefully: a preStop pause for endpoint removal, then a grace period longer than the drain", () => {
    const config = configMap(objects(), "myevents-config").data!;
    const drainSeconds = Number(config.SHUTDOWN_TIMEOUT_MS) / 1000;
    expect(drainSeconds).toBeGreaterThan(0);
    for (const d of deployments()) {
      const pod = d.spec.template.spec;
      const c = pod.containers[0]!;
      const preStop = c.lifecycle?.preStop;
      expect(preStop, d.metadata.name).toBeDefined();
      const pause = preStop!.sleep?.seconds ?? Number(/sleep (\d+)/.exec(preStop!.exec!.command.join(" "))![1]);
      expect(pause, d.metadata.name).toBeGreaterThanOrEqual(5);
      // The Node processes drain for SHUTDOWN_TIMEOUT_MS after SIGTERM (which
      // comes after preStop), then close their connections: keep 5 s for that.
      const drain = d.metadata.name in NODE_COMPONENTS ? drainSeconds : 0;
      if (drain) expect(c.envFrom?.some((e) => e.configMapRef?.name === configMap(objects(), "myevents-config").metadata.name), d.metadata.name).toBe(true);
      expect(pod.terminationGracePeriodSeconds, d.metadata.name).toBeGreaterThanOrEqual(pause + drain + 5);
    }
    // Envoy drains its listeners for --drain-time-s during the preStop pause.
    const envoy = deployments().find((d) => d.metadata.name === "envoy")!.spec.template.spec.containers[0]!;
    const drainTime = Number(envoy.args![envoy.args!.indexOf("--drain-time-s") + 1]);
    expect(envoy.lifecycle!.preStop!.exec!.command.join(" ")).toContain(`POST /drain_listeners?graceful`);
    expect(envoy.lifecycle!.preStop!.exec!.command.join(" ")).toContain(`sleep ${drainTime}`);
  });

  it("gives every Deployment a Service, a PodDisruptionBudget that still lets nodes drain, and an autoscaler unless it is a single writer", () => {
    const services = ofKind<Service>(objects(), "Service");
    const pdbs = ofKind<Pdb>(objects(), "PodDisruptionBudget");
    const hpas = ofKind<Hpa>(objects(), "HorizontalPodAutoscaler");
    for (const d of deployments()) {
      const name = d.metadata.name;
      const labels = d.spec.template.metadata.labels;
      expect(selects({ matchLabels: d.spec.selector.matchLabels }, labels), `${name} selector`).toBe(true);
      const svc = services.find((s) => selects({ matchLabels: s.spec.selector }, labels));
      expect(svc?.metadata.name, `${name}'s Service`).toBe(name);
      for (const p of svc!.spec.ports) expect(d.spec.template.spec.containers[0]!.ports!.map((cp) => cp.name), `${name} Service port ${p.name}`).toContain(p.targetPort);
      const pdb = pdbs.filter((p) => selects(p.spec.selector, labels));
      expect(pdb.length, `${name}'s PodDisruptionBudget`).toBe(1);
      expect(pdb[0]!.spec.maxUnavailable, `${name}: maxUnavailable 1 never blocks a node drain`).toBe(1);
      const hpa = hpas.filter((h) => h.spec.scaleTargetRef.kind === "Deployment" && h.spec.scaleTargetRef.name === name);
      if (build === "ferretdb" && SINGLE_WRITERS.includes(name)) {
        expect(hpa, `${name} must not be autoscaled on FerretDB`).toEqual([]);
        expect(d.spec.replicas, name).toBe(1);
        // A rolling update would run two writers side by side.
        expect(d.spec.strategy?.type, name).toBe("Recreate");
      } else {
        expect(hpa.length, `${name}'s autoscaler`).toBe(1);
        expect(hpa[0]!.apiVersion).toBe("autoscaling/v2");
        expect(hpa[0]!.spec.minReplicas, name).toBeGreaterThanOrEqual(2);
        expect(hpa[0]!.spec.maxReplicas, name).toBeGreaterThan(hpa[0]!.spec.minReplicas);
        expect(d.spec.replicas, name).toBe(hpa[0]!.spec.minReplicas);
        expect(d.spec.strategy?.type, name).toBe("RollingUpdate");
        // Replicas spread over nodes, counting this Deployment's own pods.
        const spread = d.spec.template.spec.topologySpreadConstraints?.find((t) => t.topologyKey === "kubernetes.io/hostname");
        expect(spread && selects(spread.labelSelector, labels), `${name} spreads its replicas over nodes`).toBe(true);
      }
    }
  });

  it("gives each Node process the environment it reads: ports, peers, credentials from the operator's Secret", () => {
    const config = configMap(objects(), "myevents-config");
    const services = ofKind<Service>(objects(), "Service");
    for (const [name, ports] of Object.entries(PORTS)) {
      const c = deployments().find((d) => d.metadata.name === name)!.spec.template.spec.containers[0]!;
      const explicit = Object.fromEntries((c.env ?? []).map((e) => [e.name, e]));
      expect(explicit.PORT?.value, name).toBe(String(ports.api));
      expect(explicit.ADMIN_PORT?.value, name).toBe(String(ports.admin));
      const fromConfig = c.envFrom?.some((e) => e.configMapRef?.name === config.metadata.name) ? config.data! : {};
      const given = new Set([...Object.keys(explicit), ...Object.keys(fromConfig)]);
      const read = variablesRead(name);
      const readable = new Set([...(read ?? PLANNED_ENV[name] ?? []), ...PLANNED_EVERYWHERE]);
      // Every explicitly set variable is one the process reads (a typo would
      // silently leave the default in force).
      expect(Object.keys(explicit).filter((v) => !readable.has(v)), `${name} sets variables it does not read`).toEqual([]);
      // Credentials: only from the Secret, never a value in the manifests.
      const needed = read ? [...read].filter((v) => v in SECRET_VARIABLES) : (PLANNED_ENV[name] ?? []).filter((v) => v in SECRET_VARIABLES);
      needed.push(...PLANNED_EVERYWHERE);
      for (const v of new Set(needed)) {
        expect(explicit[v]?.value, `${name}.${v} must not be a literal`).toBeUndefined();
        expect(explicit[v]?.valueFrom?.secretKeyRef, `${name}.${v}`).toEqual({ name: "myevents-secrets", key: SECRET_VARIABLES[v] });
      }
      // Peers the process reads are given, as this namespace's Services on their gRPC port.
      for (const v of [...(read ?? [])].filter((x) => /^(EVENTS|BOOKINGS|NOTIFICATIONS)_URL$/.test(x))) {
        expect(given.has(v), `${name} needs ${v}`).toBe(true);
        const url = new URL(fromConfig[v] ?? explicit[v]!.value!);
        const peer = services.find((s) => s.metadata.name === url.hostname);
        expect(peer?.spec.ports.find((p) => p.name === "grpc")?.port, `${name}.${v}`).toBe(Number(url.port));
        expect(PORTS[url.hostname]?.api, `${name}.${v}`).toBe(Number(url.port));
      }
    }
    // Every shared setting is read by some component (typos again).
    const readAnywhere = new Set(Object.keys(PORTS).flatMap((n) => [...(variablesRead(n) ?? [])]));
    expect(Object.keys(config.data!).filter((k) => !readAnywhere.has(k))).toEqual([]);
    // No Secret is rendered: the operator creates it (README, kustomization.yaml).
    expect(ofKind(objects(), "Secret")).toEqual([]);
    for (const v of Object.values(config.data!)) expect(v, "no credentials in the ConfigMap").not.toMatch(/\/\/[^/@]+:[^/@]+@/);
  });

  it("scrape annotations name each component's metrics port and path", () => {
    for (const d of deployments().filter((x) => x.metadata.name !== "web")) {
      const a = d.spec.template.metadata.annotations ?? {};
      const c = d.spec.template.spec.containers[0]!;
      expect(a["prometheus.io/scrape"], d.metadata.name).toBe("true");
      const port = Number(a["prometheus.io/port"]);
      expect(c.ports!.find((p) => p.containerPort === port)?.name, d.metadata.name).toBe(d.metadata.name === "envoy" ? "metrics" : "admin");
      expect(a["prometheus.io/path"], d.metadata.name).toBe(d.metadata.name === "envoy" ? "/stats/prometheus" : "/metrics");
    }
  });

  it("runs Envoy on envoy/envoy.yaml as it is, with its descriptor set, reaching every cluster through a headless Service", () => {
    const cm = configMap(objects(), "envoy-config");
    expect(cm.data!["envoy.yaml"]).toBe(readFileSync(path.join(root, "envoy", "envoy.yaml"), "utf8"));
    expect(Buffer.from(cm.binaryData!["myevents.pb"]!, "base64").equals(readFileSync(path.join(root, "envoy", "myevents.pb")))).toBe(true);

    const d = deployments().find((x) => x.metadata.name === "envoy")!;
    const c = d.spec.template.spec.containers[0]!;
    const configPath = c.args![c.args!.indexOf("-c") + 1]!;
    const mount = c.volumeMounts!.find((m) => m.mountPath === path.dirname(configPath))!;
    expect(d.spec.template.spec.volumes!.find((v) => v.name === mount.name)?.configMap?.name).toBe(cm.metadata.name);
    expect(path.basename(configPath) in cm.data!).toBe(true);
    const envoy = loadEnvoyConfig(root);
    const edge = envoy.static_resources.listeners.find((l) => l.name === "edge")!.address.socket_address.port_value;
    const transcoder = hcmOn(envoy, edge).http_filters.find((f) => f.name === "envoy.filters.http.grpc_json_transcoder")!;
    const descriptor = transcoder.typed_config!.proto_descriptor as string;
    expect(path.dirname(descriptor)).toBe(mount.mountPath);
    expect(path.basename(descriptor) in cm.binaryData!).toBe(true);
    expect(portNamed(c, "http")).toBe(edge);
    const metrics = envoy.static_resources.listeners.find((l) => l.name === "metrics")!.address.socket_address.port_value;
    expect(portNamed(c, "metrics")).toBe(metrics);
    // The admin stays on loopback: no container port for it.
    expect(c.ports!.map((p) => p.containerPort)).not.toContain(envoy.admin.address.socket_address.port_value);

    const services = ofKind<Service>(objects(), "Service");
    for (const cluster of envoy.static_resources.clusters.filter((x) => x.name !== "envoy_admin")) {
      for (const { address, port_value } of endpointsOf(clusterByName(envoy, cluster.name)!)) {
        const svc = services.find((s) => s.metadata.name === address);
        expect(svc, `cluster ${cluster.name}: Service ${address}`).toBeDefined();
        expect(svc!.spec.ports.map((p) => p.port), `cluster ${cluster.name}`).toContain(port_value);
        // STRICT_DNS resolves every pod only through a headless Service.
        expect(svc!.spec.clusterIP, `Service ${address}`).toBe("None");
      }
    }
  });

  it("denies all traffic by default and allows exactly the mesh's connections", () => {
    const policies = networkPolicies(objects());
    const deny = policies.find((p) => p.metadata.name === "default-deny-all")!;
    expect(deny.spec).toEqual({ podSelector: {}, policyTypes: ["Ingress", "Egress"] });

    const ns = { "kubernetes.io/metadata.name": "myevents" };
    const pods: Endpoint[] = deployments().map((d) => ({
      name: d.metadata.name,
      pod: { labels: d.spec.template.metadata.labels, namespace: "myevents", namespaceLabels: ns },
      ports: d.spec.template.spec.containers[0]!.ports!.map((p) => ({ name: p.name!, port: p.containerPort, protocol: p.protocol })),
    }));
    const outside = (name: string, ports: Endpoint["ports"] = []): Endpoint => ({ name, ports });
    const pod = (name: string, namespace: string, labels: Record<string, string>, ports: Endpoint["ports"] = []): Endpoint => ({
      name,
      pod: { labels, namespace, namespaceLabels: { "kubernetes.io/metadata.name": namespace } },
      ports,
    });
    const others = [
      outside("internet"),
      outside("mongodb", [{ name: "mongodb", port: 27017 }]),
      outside("rabbitmq", [{ name: "amqp", port: 5672 }, { name: "amqps", port: 5671 }, { name: "management", port: 15672 }]),
      outside("otel-collector", [{ name: "otlp-grpc", port: 4317 }, { name: "otlp-http", port: 4318 }]),
      pod("prometheus", "monitoring", { "app.kubernetes.io/name": "prometheus" }),
      pod("kube-dns", "kube-system", { "k8s-app": "kube-dns" }, [{ name: "dns", port: 53, protocol: "UDP" }, { name: "dns-tcp", port: 53 }]),
      pod("stranger", "myevents", { "app.kubernetes.io/name": "debug" }),
      pod("other-app", "shop", { "app.kubernetes.io/name": "shop" }),
    ];
    const edges = new Set(reachability(policies, [...pods, ...others]));

    const ours = pods.map((p) => p.name);
    const expected = new Set<string>();
    const allow = (froms: string[], to: string, port: string) => froms.forEach((f) => expected.add(`${f} -> ${to}:${port}`));
    // The edges, from anywhere that may send (our own pods may not).
    const notOurs = others.filter((o) => o.name !== "stranger").map((o) => o.name);
    for (const edge of ["envoy", "gateway"]) allow(notOurs, edge, "http");
    for (const api of ["events", "bookings", "notifications"]) allow(["envoy", "gateway"], api, "grpc");
    allow(["bookings"], "events", "grpc");
    allow(["envoy"], "web", "http");
    for (const c of ["events", "bookings", "notifications", "gateway"]) allow(["prometheus"], c, "admin");
    allow(["prometheus"], "envoy", "metrics");
    allow(["events", "bookings"], "mongodb", "mongodb");
    for (const api of ["events", "bookings", "notifications"]) {
      allow([api], "rabbitmq", "amqp");
      allow([api], "rabbitmq", "amqps");
    }
    for (const c of ["events", "bookings", "notifications", "gateway"]) for (const p of ["otlp-grpc", "otlp-http"]) allow([c], "otel-collector", p);
    for (const c of [...ours, "stranger"]) for (const p of ["dns", "dns-tcp"]) allow([c], "kube-dns", p);
    // Outside the namespace nothing is restricted by these policies: filter those pairs out.
    const inScope = (edge: string) => {
      const [from, to] = edge.split(/ -> |:/);
      return [...ours, "stranger"].includes(from!) || ours.includes(to!);
    };
    expect([...edges].filter(inScope).sort()).toEqual([...expected].filter(inScope).sort());
  });
});

describe("deploy/k8s, kustomize", () => {
  it("is the pinned kustomize from scripts/tools/install.sh", () => {
    expect(readFileSync(`${tool("kustomize")}.version`, "utf8").trim()).toMatch(/^sigs\.k8s\.io\/kustomize\/kustomize\/v5@v5\.\d+\.\d+$/);
  });

  it("the FerretDB overlay changes only the single writers' replicas, strategy and autoscalers", () => {
    const strip = (objects: K8sObject[]) =>
      objects
        .filter((o) => !(o.kind === "HorizontalPodAutoscaler" && SINGLE_WRITERS.includes(o.metadata.name)))
        .map((o) => {
          if (o.kind !== "Deployment" || !SINGLE_WRITERS.includes(o.metadata.name)) return o;
          const { replicas: _r, strategy: _s, ...spec } = (o as Deployment).spec;
          return { ...o, spec };
        });
    expect(strip(builds.ferretdb!)).toEqual(strip(builds.base!));
    expect(builds.base!.length - builds.ferretdb!.length).toBe(SINGLE_WRITERS.length);
  });
});
