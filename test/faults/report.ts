import { cpus } from "node:os";
import type { ScenarioFigures } from "./scenarios.js";

export interface FaultsResult {
  started: string;
  finished: string;
  node: string;
  isolatedVhost: boolean;
  scenarios: ScenarioFigures[];
}

const seconds = (ms: number) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(1)} s` : "not recovered");

/** The figures as the markdown table README's "Reliability" section copies. */
export function faultsMarkdown(result: FaultsResult, rawFile: string): string {
  const rows = result.scenarios.map(
    (f) =>
      `| ${f.scenario} | ${f.attempted} | ${f.confirmed} | ${f.soldOut} | ${f.recoveredByRetry} | ${f.lost} | ${f.duplicated} | ${f.oversold} | ${f.staleSeatCopies} | ${seconds(f.recoverMs)} | ${
        Object.entries(f.codes)
          .map(([c, n]) => `${c} ${n}`)
          .join(", ") || "none"
      } | ${f.problems.length === 0 ? "pass" : "FAIL"} |`,
  );
  return [
    "# Fault-injection results",
    "",
    `${result.started} · ${cpus().length} cores · Node ${result.node} · \`npm run test:faults\``,
    "",
    "| scenario | attempted | confirmed | sold out | answered by retry | lost | duplicated | oversold seats | stale seat copies | time to recover | client error codes | result |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ...rows,
    "",
    ...result.scenarios.map((f) => `- **${f.scenario}**: ${f.fault}.${f.problems.length ? ` Problems: ${f.problems.join("; ")}` : ""}`),
    "",
    `Raw data: \`bench/results/${rawFile}\`.`,
    "",
  ].join("\n");
}
