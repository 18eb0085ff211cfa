import { cpus, loadavg } from "node:os";
import type { ScenarioFigures } from "./scenarios.js";

export interface FaultsResult {
  started: string;
  finished: string;
  node: string;
  isolatedVhost: boolean;
  /** The mesh ran on a RabbitMQ node of the suite's own. */
  privateBroker?: boolean;
  scenarios: ScenarioFigures[];
}

const seconds = (ms: number) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(1)} s` : "not recovered");

/** The figures as the markdown table README's "Reliability" section copies. */
export function faultsMarkdown(result: FaultsResult, rawFile: string): string {
  const rows = result.scenarios.map(
    (f) =>
      `| ${f.scenario} | ${f.attempted} | ${f.confirmed} | ${f.soldOut} | ${f.recoveredByRetry} | ${f.lost} | ${f.duplicated} | ${f.oversold} | ${f.staleSeatCopies} | ${f.notifications.stream} | ${f.notifications.checked} | ${f.notifications.missing} | ${seconds(f.recoverMs)} | ${
        Object.entries(f.codes)
          .map(([c, n]) => `${c} ${n}`)
          .join(", ") || "none"
      } | ${f.problems.length === 0 ? "pass" : "FAIL"} |`,
  );
  return [
    "# Fault-injection results",
    "",
    `${result.started} · ${cpus().length} cores · Node ${result.node} · load average ${loadavg().map((l) => l.toFixed(1)).join(" ")} at the end · RabbitMQ: ${result.privateBroker ? "a node of the suite's own" : result.isolatedVhost ? "a vhost of the suite's own" : "the given vhost"} · \`npm run test:faults\``,
    "",
    "| scenario | attempted | confirmed | sold out | answered by retry | lost | duplicated | oversold seats | stale seat copies | notification stream | notified | notifications missing | time to recover | client error codes | result |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---|",
    ...rows,
    "",
    ...result.scenarios.map(
      (f) =>
        `- **${f.scenario}**: ${f.fault}.${f.reservationsUndone ? ` Recovery undid ${f.reservationsUndone} abandoned reservation(s) (ReservationUndone).` : ""}${f.problems.length ? ` Problems: ${f.problems.join("; ")}` : ""}`,
    ),
    "",
    `Raw data: \`bench/results/${rawFile}\`.`,
    "",
  ].join("\n");
}
