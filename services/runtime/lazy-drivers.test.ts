import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "./paths.js";

// The embedded defaults must not load the MongoDB driver or amqplib: each
// costs every process RSS and live heap (bench/README.md, finding 12).
// Each case is a fresh process, since a module, once loaded, stays loaded.

const run = promisify(execFile);

/** Starts one service in a child process; answers which drivers it loaded. */
async function driversLoadedBy(service: "events" | "bookings" | "notifications", env: Record<string, string> = {}) {
  const { stdout } = await run(process.execPath, ["--import", "tsx", join(REPO_ROOT, "services/runtime/lazy-drivers.child.ts"), service], {
    cwd: REPO_ROOT,
    env: { ...process.env, PORT: "0", ADMIN_PORT: "0", LOG_LEVEL: "error", MONGODB_URL: "", AMQP_URL: "", ...env },
    timeout: 30_000,
  });
  const line = stdout.split("\n").find((l) => l.startsWith("drivers "));
  return JSON.parse(line!.slice("drivers ".length)) as { mongodb: boolean; amqplib: boolean };
}

describe("driver loading", () => {
  it.each(["events", "bookings", "notifications"] as const)("%s on the embedded defaults loads neither mongodb nor amqplib", async (service) => {
    expect(await driversLoadedBy(service)).toEqual({ mongodb: false, amqplib: false });
  });

  it("loads both when MONGODB_URL and AMQP_URL are set (the service starts even while both are down)", async () => {
    const down = { MONGODB_URL: "mongodb://127.0.0.1:9", AMQP_URL: "amqp://127.0.0.1:9" };
    expect(await driversLoadedBy("events", down)).toEqual({ mongodb: true, amqplib: true });
  });
});
