// The measured servers' side of the harness's IPC, in a module of its own:
// importing bench/lib.ts would load @grpc/grpc-js and protobufjs into the
// project's server, which production never loads (their memory counted in (a)'s RSS).

import { PerformanceObserver, constants } from "node:perf_hooks";
import { getHeapSpaceStatistics } from "node:v8";

/** What a server process answers to {type:"stats"} over IPC. */
export interface ServerStats {
  type: "stats";
  cpuUserUs: number;
  cpuSystemUs: number;
  /** Full (mark-compact) GCs since the process started, and their pauses in ms. */
  fullGcs: number;
  fullGcMs: number;
}

/** What it answers to {type:"memory"}: process.memoryUsage() and V8's spaces (bytes in use / committed), to tell what the RSS holds. */
export interface ServerMemory {
  type: "memory";
  memory: NodeJS.MemoryUsage;
  spaces: Record<string, { used: number; size: number }>;
}

/** Makes a server process answer stats (and memory) requests over IPC. */
export function answerStats(): void {
  // Counted because a process can settle into promoting most of each call to the old space
  // (bench/README.md finding 16): its full GCs per call are what tell it apart.
  const gc = { fullGcs: 0, fullGcMs: 0 };
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if ((entry as { detail?: { kind?: number } }).detail?.kind !== constants.NODE_PERFORMANCE_GC_MAJOR) continue;
      gc.fullGcs++;
      gc.fullGcMs += entry.duration;
    }
  }).observe({ entryTypes: ["gc"] });
  process.on("message", (msg: { type?: string }) => {
    if (msg?.type === "stats") {
      const u = process.cpuUsage();
      process.send!({ type: "stats", cpuUserUs: u.user, cpuSystemUs: u.system, ...gc } satisfies ServerStats);
    } else if (msg?.type === "memory") {
      const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, { used: s.space_used_size, size: s.space_size }]));
      process.send!({ type: "memory", memory: process.memoryUsage(), spaces } satisfies ServerMemory);
    } else if (msg?.type === "exit") {
      process.exit(0);
    }
  });
}
