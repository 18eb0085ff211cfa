import type { Reporter } from "vitest/reporters";

type Task = { type: string; mode?: string; result?: { state?: string }; tasks?: Task[] };

/**
 * Ends a run with one plain line, "N passed, N failed, N skipped", after
 * vitest's own summary, for CI tooling that does not know vitest's format.
 */
export default class SummaryReporter implements Reporter {
  onFinished(files: Task[] = [], errors: unknown[] = []): void {
    const count = { passed: 0, failed: errors.length, skipped: 0 };
    const walk = (task: Task) => {
      if (task.type === "test") {
        if (task.result?.state === "pass") count.passed++;
        else if (task.result?.state === "fail") count.failed++;
        else count.skipped++;
      }
      for (const child of task.tasks ?? []) walk(child);
    };
    for (const file of files) {
      if (file.result?.state === "fail" && (file.tasks ?? []).length === 0) count.failed++; // failed to load
      walk(file);
    }
    process.stdout.write(`\n${count.passed} passed, ${count.failed} failed, ${count.skipped} skipped\n`);
  }
}
