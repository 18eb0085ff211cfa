// A small evaluator of Kubernetes NetworkPolicy semantics, enough to compute
// who may reach whom under the policies of deploy/k8s: pod and namespace
// selectors (matchLabels, matchExpressions), ipBlock (taken as "outside the
// cluster"), numbered and named ports, policyTypes, and the rule that a
// connection needs both the sender's egress and the receiver's ingress.
import type { K8sObject } from "./k8s.js";

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: "In" | "NotIn" | "Exists" | "DoesNotExist"; values?: string[] }[];
}

interface PolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: { cidr: string; except?: string[] };
}

interface PolicyPort {
  protocol?: string;
  port?: number | string;
  endPort?: number;
}

interface NetworkPolicy extends K8sObject {
  spec: {
    podSelector: LabelSelector;
    policyTypes?: ("Ingress" | "Egress")[];
    ingress?: { from?: PolicyPeer[]; ports?: PolicyPort[] }[];
    egress?: { to?: PolicyPeer[]; ports?: PolicyPort[] }[];
  };
}

/** A pod (labels, namespace and its labels, named ports) or something outside the cluster. */
export interface Endpoint {
  name: string;
  pod?: { labels: Record<string, string>; namespace: string; namespaceLabels: Record<string, string> };
  ports: { name: string; port: number; protocol?: string }[];
}

export function selects(selector: LabelSelector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = e.key in labels;
    const ok =
      e.operator === "In" ? has && e.values!.includes(labels[e.key]!)
      : e.operator === "NotIn" ? !has || !e.values!.includes(labels[e.key]!)
      : e.operator === "Exists" ? has
      : !has;
    if (!ok) return false;
  }
  return true;
}

function peerMatches(peer: PolicyPeer, other: Endpoint, policyNamespace: string): boolean {
  if (peer.ipBlock) return other.pod === undefined;
  if (!other.pod) return false;
  if (peer.namespaceSelector) {
    if (!selects(peer.namespaceSelector, other.pod.namespaceLabels)) return false;
  } else if (other.pod.namespace !== policyNamespace) {
    return false;
  }
  return peer.podSelector ? selects(peer.podSelector, other.pod.labels) : true;
}

function portMatches(ports: PolicyPort[] | undefined, port: Endpoint["ports"][number]): boolean {
  if (!ports || ports.length === 0) return true;
  return ports.some((p) => {
    if ((p.protocol ?? "TCP") !== (port.protocol ?? "TCP")) return false;
    if (p.port === undefined) return true;
    if (typeof p.port === "string") return p.port === port.name;
    return p.endPort ? port.port >= p.port && port.port <= p.endPort : port.port === p.port;
  });
}

function types(p: NetworkPolicy): string[] {
  return p.spec.policyTypes ?? (p.spec.egress ? ["Ingress", "Egress"] : ["Ingress"]);
}

/** Whether `from` may open a connection to `to` on its port named `portName`. */
export function allowed(policies: NetworkPolicy[], from: Endpoint, to: Endpoint, portName: string): boolean {
  const port = to.ports.find((p) => p.name === portName);
  if (!port) throw new Error(`${to.name} has no port ${portName}`);
  const namespaceOf = (p: NetworkPolicy) => p.metadata.namespace ?? "default";

  if (from.pod) {
    const egress = policies.filter((p) => namespaceOf(p) === from.pod!.namespace && types(p).includes("Egress") && selects(p.spec.podSelector, from.pod!.labels));
    const out = egress.length === 0 || egress.some((p) => (p.spec.egress ?? []).some((r) => (!r.to || r.to.length === 0 || r.to.some((peer) => peerMatches(peer, to, namespaceOf(p)))) && portMatches(r.ports, port)));
    if (!out) return false;
  }
  if (to.pod) {
    const ingress = policies.filter((p) => namespaceOf(p) === to.pod!.namespace && types(p).includes("Ingress") && selects(p.spec.podSelector, to.pod!.labels));
    const inn = ingress.length === 0 || ingress.some((p) => (p.spec.ingress ?? []).some((r) => (!r.from || r.from.length === 0 || r.from.some((peer) => peerMatches(peer, from, namespaceOf(p)))) && portMatches(r.ports, port)));
    if (!inn) return false;
  }
  return true;
}

export const networkPolicies = (objects: K8sObject[]) => objects.filter((o): o is NetworkPolicy => o.kind === "NetworkPolicy");

/** Every "from -> to:port" that the policies allow among the endpoints. */
export function reachability(policies: NetworkPolicy[], endpoints: Endpoint[]): string[] {
  const edges: string[] = [];
  for (const from of endpoints) {
    for (const to of endpoints) {
      if (to === from || !to.ports.length) continue;
      for (const p of to.ports) if (allowed(policies, from, to, p.name)) edges.push(`${from.name} -> ${to.name}:${p.name}`);
    }
  }
  return edges.sort();
}
