// The short form of the fault suite (inside `npm test`): the mesh as
// separate processes under booking load, with the broker connection cut,
// the booking service SIGKILLed, the database unreachable and poison
// messages, each followed by the invariants (see README "Reliability").
// The full form, with every scenario and longer faults: `npm run test:faults`.
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { amqpUrl } from "../support/backing.js";
import { runFaultSuite, type ScenarioFigures } from "./scenarios.js";

describe("fault injection (short form)", () => {
  it("loses, duplicates and oversells nothing, and every process recovers by itself", { timeout: 240_000 }, async () => {
    const { figures } = await runFaultSuite({
      amqpUrl: amqpUrl(),
      logDir: join(tmpdir(), `myevents-faults-short-${Date.now()}`),
      scenarios: ["broker-cut", "sigkill-bookings", "db-outage", "poison"],
      faultMs: 3_000,
      dbOutageMs: 5_000,
      steadyMs: 1_500,
      concurrency: 4,
    });
    const summary = (f: ScenarioFigures) => ({ scenario: f.scenario, lost: f.lost, duplicated: f.duplicated, oversold: f.oversold, problems: f.problems });
    expect(figures.map(summary)).toEqual(
      ["broker-cut", "sigkill-bookings", "db-outage", "poison"].map((scenario) => ({ scenario, lost: 0, duplicated: 0, oversold: 0, problems: [] })),
    );
    for (const f of figures) {
      expect(f.confirmed, `${f.scenario}: bookings confirmed under load`).toBeGreaterThan(0);
      expect(Number.isFinite(f.recoverMs), `${f.scenario}: recovered`).toBe(true);
    }
  });
});
