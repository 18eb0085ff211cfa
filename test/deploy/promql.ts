// Reading alert expressions with the Prometheus project's own PromQL grammar
// (@prometheus-io/lezer-promql, the parser of Prometheus' web UI).
import { parser } from "@prometheus-io/lezer-promql";
import { readFileSync } from "node:fs";
import path from "node:path";
import { parse } from "yaml";
import { root } from "./tools.js";

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export function alertRules(file = "deploy/prometheus/alerts.yml"): AlertRule[] {
  const doc = parse(readFileSync(path.join(root, file), "utf8")) as { groups: { name: string; rules: AlertRule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

export interface PromqlFacts {
  /** Syntax errors, as "at offset N: ...". */
  errors: string[];
  /** Each vector selector: its metric name and the label names it matches on. */
  selectors: { metric: string; labels: string[] }[];
  /** Labels of by (...) / without (...) clauses and on (...) / ignoring (...) matching. */
  grouping: string[];
}

export function promqlFacts(expr: string): PromqlFacts {
  const facts: PromqlFacts = { errors: [], selectors: [], grouping: [] };
  let selector: PromqlFacts["selectors"][number] | undefined;
  let inGrouping = false;
  parser.parse(expr).iterate({
    enter(node) {
      const text = expr.slice(node.from, node.to);
      if (node.type.isError) facts.errors.push(`at offset ${node.from}: unexpected ${JSON.stringify(expr.slice(node.from, node.from + 12))}`);
      else if (node.name === "VectorSelector") facts.selectors.push((selector = { metric: "", labels: [] }));
      else if (node.name === "Identifier" && selector) selector.metric = text;
      else if (node.name === "GroupingLabels") inGrouping = true;
      else if (node.name === "LabelName" && selector) selector.labels.push(text);
      else if (node.name === "LabelName" && inGrouping) facts.grouping.push(text);
    },
    leave(node) {
      if (node.name === "VectorSelector") selector = undefined;
      if (node.name === "GroupingLabels") inGrouping = false;
    },
  });
  return facts;
}
