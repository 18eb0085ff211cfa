import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { REPO_ROOT } from "./paths.js";

const run = promisify(execFile);

/** The old space's peak (MiB) in a child churning promoted garbage, with or without boundHeapGrowth(). */
async function peakOldSpace(mode: "default" | "bounded"): Promise<number> {
  const { stdout } = await run(process.execPath, ["--import", "tsx", join(REPO_ROOT, "services/runtime/heap.child.ts"), mode], { cwd: REPO_ROOT, timeout: 60_000 });
  return Number(/peak ([\d.]+)/.exec(stdout)![1]);
}

// Set after V8 started, the flag must still change when full GCs happen (a
// Node upgrade could freeze V8's flags or stop reading this one).
it("boundHeapGrowth collects old-space garbage sooner than V8's own growth", async () => {
  const [unbounded, bounded] = [await peakOldSpace("default"), await peakOldSpace("bounded")];
  expect(bounded).toBeLessThan(unbounded * 0.85);
}, 120_000);
