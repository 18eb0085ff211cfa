// deploy/prometheus checked by Prometheus' own promtool (pinned, built from
// the Go module proxy by scripts/tools/install.sh): both scrape configs and
// the rule file are valid, and the alert rules' unit tests
// (deploy/prometheus/alerts.test.yml) pass. A broken copy of each must fail,
// so these checks are known to bite.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { alertRules } from "./promql.js";
import { root, run, tool, TOOL_BUILD_TIMEOUT_MS } from "./tools.js";

const dir = path.join(root, "deploy", "prometheus");
let promtool: string;
let scratch: string;

beforeAll(() => {
  promtool = tool("promtool");
  scratch = mkdtempSync(path.join(tmpdir(), "myevents-prometheus-"));
}, TOOL_BUILD_TIMEOUT_MS);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** A copy of deploy/prometheus with one file changed, for the negative checks. */
function brokenCopy(file: string, change: (text: string) => string): string {
  const copy = mkdtempSync(path.join(scratch, "copy-"));
  cpSync(dir, copy, { recursive: true });
  const text = readFileSync(path.join(copy, file), "utf8");
  const changed = change(text);
  expect(changed, "the change must change something").not.toBe(text);
  writeFileSync(path.join(copy, file), changed);
  return copy;
}

describe("deploy/prometheus (promtool)", () => {
  it("is the pinned promtool", () => {
    expect(readFileSync(`${promtool}.version`, "utf8").trim()).toBe("github.com/prometheus/prometheus/cmd/promtool@v0.316.0");
  });

  it.each(["prometheus.yml", "prometheus-kubernetes.yml"])("%s is a valid configuration whose rule files check", (file) => {
    const out = run(promtool, ["check", "config", path.join(dir, file)]);
    expect(out).toMatch(/SUCCESS: .*prometheus.*\.yml is valid prometheus config file syntax/);
    expect(out).toMatch(/SUCCESS: \d+ rules found/);
  });

  it("alerts.yml passes promtool check rules, and names every alert uniquely", () => {
    const out = run(promtool, ["check", "rules", path.join(dir, "alerts.yml")]);
    expect(out).toContain(`SUCCESS: ${alertRules().length} rules found`);
    const names = alertRules().map((r) => r.alert);
    expect(new Set(names).size).toBe(names.length);
    for (const r of alertRules()) {
      expect(r.labels?.severity, r.alert).toMatch(/^(page|warning)$/);
      expect(r.annotations?.summary, r.alert).toBeTruthy();
      expect(r.annotations?.description, r.alert).toBeTruthy();
    }
  });

  it("the alert rules pass their unit tests (alerts.test.yml)", () => {
    const out = run(promtool, ["test", "rules", path.join(dir, "alerts.test.yml")]);
    expect(out).toMatch(/SUCCESS/);
    // Every alert is exercised by at least one test case.
    const tests = readFileSync(path.join(dir, "alerts.test.yml"), "utf8");
    for (const r of alertRules()) expect(tests, r.alert).toContain(`alertname: ${r.alert}`);
  });

  it("the checks catch a broken expression, a broken config and an alert that no longer fires", () => {
    const badRule = brokenCopy("alerts.yml", (t) => t.replace("sum by (service, source) (outbox_pending_messages) > 1000", "sum by (service, source) (outbox_pending_messages > 1000"));
    expect(() => run(promtool, ["check", "rules", path.join(badRule, "alerts.yml")])).toThrow(/parse error|unclosed/i);
    const badConfig = brokenCopy("prometheus.yml", (t) => t.replace("metrics_path: /stats/prometheus", "metrics_pathh: /stats/prometheus"));
    expect(() => run(promtool, ["check", "config", path.join(badConfig, "prometheus.yml")])).toThrow(/metrics_pathh/);
    const silent = brokenCopy("alerts.yml", (t) => t.replace("(outbox_oldest_pending_age_seconds) > 120", "(outbox_oldest_pending_age_seconds) > 1200"));
    expect(() => run(promtool, ["test", "rules", path.join(silent, "alerts.test.yml")])).toThrow(/MyEventsOutboxStuck/);
  });
});
