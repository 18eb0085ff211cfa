// The short form of the fault suite (inside `npm test`): the mesh as
// separate processes under booking load, with a notification subscriber
// through the edge, while the broker connection is cut, the booking service
// SIGKILLed, the database unreachable and poison messages published, each
// followed by the invariants (see README "Reliability").
// The full form, with every scenario and longer faults: `npm run test:faults`.
//
// It runs beside other test files on a 2-core machine, so it is patient:
// every wait is bounded (patienceMs) but generous, and the test's own
// timeout is above the sum of them. Each scenario's figures are printed as
// it ends, and a failure names the scenario and its broken invariants.
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { amqpUrl } from "../support/backing.js";
import { runFaultSuite, type ScenarioFigures } from "./scenarios.js";

const SCENARIOS = ["broker-cut", "sigkill-bookings", "db-outage", "poison"];

/** One line per scenario, as the full suite prints it. */
function describeFigures(f: ScenarioFigures): string {
  return (
    `${f.scenario}: attempted ${f.attempted}, confirmed ${f.confirmed}, sold out ${f.soldOut}, lost ${f.lost}, duplicated ${f.duplicated}, ` +
    `oversold ${f.oversold}, stale seat copies ${f.staleSeatCopies}, notified ${f.notifications.checked} (stream ${f.notifications.stream}, ` +
    `missing ${f.notifications.missing}), recovered in ${f.recoverMs} ms, codes ${JSON.stringify(f.codes)}` +
    (f.problems.length ? `\n  PROBLEMS: ${f.problems.join("\n  ")}` : "")
  );
}

describe("fault injection (short form)", () => {
  it("loses, duplicates and oversells nothing, notifies every booking, and every process recovers by itself", { timeout: 900_000 }, async () => {
    const logDir = join(tmpdir(), `myevents-faults-short-${Date.now()}`);
    const { figures } = await runFaultSuite({
      amqpUrl: amqpUrl(),
      logDir,
      scenarios: SCENARIOS,
      faultMs: 3_000,
      dbOutageMs: 5_000,
      steadyMs: 1_500,
      concurrency: 4,
      patienceMs: 120_000,
      log: (line) => console.log(`[faults short] ${line}`),
    });
    const report = `${figures.map(describeFigures).join("\n")}\nprocess logs: ${logDir}`;
    console.log(`[faults short] figures:\n${report}`);

    expect(figures.map((f) => f.scenario)).toEqual(SCENARIOS);
    for (const f of figures) {
      expect({ scenario: f.scenario, lost: f.lost, duplicated: f.duplicated, oversold: f.oversold, problems: f.problems }, report).toEqual({
        scenario: f.scenario,
        lost: 0,
        duplicated: 0,
        oversold: 0,
        problems: [],
      });
      // The recovery probe is a booking of the scenario's own, so a recovered scenario has one.
      expect(f.confirmed, `${f.scenario}: bookings confirmed under load\n${report}`).toBeGreaterThan(0);
      expect(Number.isFinite(f.recoverMs), `${f.scenario}: recovered\n${report}`).toBe(true);
    }
  });
});
