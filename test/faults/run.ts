// `npm run test:faults`: the whole fault-injection suite against separate
// processes, with figures written to bench/results/ (faults-<time>.json and
// faults-latest.md). Exits 1 when an invariant fails.
//
//   npm run test:faults -- [--scenarios a,b,...] [--fault-seconds 5] [--db-outage-seconds 10]
//                          [--steady-seconds 4] [--concurrency 6] [--no-broker-restart]
//
// With broker-restart among the scenarios (the default), the mesh runs on a
// RabbitMQ node of the suite's own (test/faults/broker.ts), which the
// scenario restarts; the machine's broker is never touched. That needs the
// rabbitmq-server package's scripts; --no-broker-restart (or
// FAULTS_BROKER_RESTART=0) leaves the scenario out and uses a vhost of the
// machine's broker instead.
import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { exitOnInterrupt, ROOT } from "./mesh.js";
import { faultsMarkdown } from "./report.js";
import { runFaultSuite, SCENARIOS } from "./scenarios.js";

const { values } = parseArgs({
  options: {
    scenarios: { type: "string" },
    "fault-seconds": { type: "string", default: "5" },
    "db-outage-seconds": { type: "string", default: "10" },
    "steady-seconds": { type: "string", default: "4" },
    concurrency: { type: "string", default: "6" },
    "no-broker-restart": { type: "boolean", default: process.env.FAULTS_BROKER_RESTART === "0" },
    out: { type: "string", default: join(ROOT, "bench/results") },
  },
});

exitOnInterrupt();
const scenarios = values.scenarios
  ? values.scenarios.split(",").map((s) => s.trim())
  : Object.keys(SCENARIOS).filter((s) => !(values["no-broker-restart"] && s === "broker-restart"));
const logDir = join(tmpdir(), `myevents-faults-${Date.now()}`);
const started = new Date();
console.log(`fault suite: ${scenarios.join(", ")}; process logs in ${logDir}`);
const { figures, isolatedVhost, privateBroker } = await runFaultSuite({
  amqpUrl: process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672",
  logDir,
  scenarios,
  faultMs: Number(values["fault-seconds"]) * 1000,
  dbOutageMs: Number(values["db-outage-seconds"]) * 1000,
  steadyMs: Number(values["steady-seconds"]) * 1000,
  concurrency: Number(values.concurrency),
  log: (line) => console.log(line),
});
const result = { started: started.toISOString(), finished: new Date().toISOString(), node: process.version, isolatedVhost, privateBroker, scenarios: figures };
mkdirSync(values.out, { recursive: true });
const stamp = started.toISOString().replace(/[:.]/g, "-");
writeFileSync(join(values.out, `faults-${stamp}.json`), `${JSON.stringify(result, null, 2)}\n`);
writeFileSync(join(values.out, "faults-latest.md"), faultsMarkdown(result, `faults-${stamp}.json`));
console.log(`\n${faultsMarkdown(result, `faults-${stamp}.json`)}`);
const failed = figures.filter((f) => f.problems.length > 0);
if (failed.length > 0) {
  console.error(`FAILED: ${failed.map((f) => `${f.scenario}: ${f.problems.join("; ")}`).join("\n")}`);
  process.exit(1);
}
console.log(`all ${figures.length} scenarios passed`);
process.exit(0);
