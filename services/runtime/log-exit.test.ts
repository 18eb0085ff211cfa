import { spawn } from "node:child_process";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { expect, it } from "vitest";
import { REPO_ROOT } from "./paths.js";

// A service's last log lines (why it stopped, what it was doing) matter most.
// Its stdout is a pipe in a container, and Node writes pipes asynchronously
// on POSIX: lines still queued when the process exits are lost unless the
// exit waits for them.
it("a service stopping on SIGTERM loses no log line, even while its stdout pipe is full", async () => {
  const lines = 5_000; // 2 × 5,000 lines of ~300 bytes: ~3 MB, far over a pipe's 64 KiB
  const child = spawn(process.execPath, ["--import", "tsx", join(REPO_ROOT, "services/runtime/log-exit.child.ts"), String(lines)], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "inherit"],
  });
  // A reader that lags: nothing is read for the first 1.5 s.
  child.stdout.pause();
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const closed = new Promise((resolve) => child.stdout.once("close", resolve));
  await sleep(1_500);
  let text = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
  child.stdout.resume();
  expect(await exited).toBe(0);
  await closed;
  // A line cut short does not parse: it counts as lost.
  const seen = text
    .split("\n")
    .filter((l) => l.includes('"msg":"line"') && l.endsWith("}"))
    .map((l) => (JSON.parse(l) as { i: number }).i);
  expect(seen.length).toBe(2 * lines);
  expect(seen).toEqual(Array.from({ length: 2 * lines }, (_, i) => i));
  expect(text).toContain('"msg":"signal received"');
}, 30_000);
