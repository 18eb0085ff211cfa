// The measured servers' side of the harness's IPC, in a module of its own:
// importing bench/lib.ts would load @grpc/grpc-js and protobufjs into the
// project's server, which production never loads (their memory counted in (a)'s RSS).

import { getHeapSpaceStatistics } from "node:v8";

/** What a server process answers to {type:"stats"} over IPC. */
export interface ServerStats {
  type: "stats";
  cpuUserUs: number;
  cpuSystemUs: number;
}

/** What it answers to {type:"memory"}: process.memoryUsage() and V8's spaces (bytes in use / committed), to tell what the RSS holds. */
export interface ServerMemory {
  type: "memory";
  memory: NodeJS.MemoryUsage;
  spaces: Record<string, { used: number; size: number }>;
}

/** Makes a server process answer stats (and memory) requests over IPC. */
export function answerStats(): void {
  process.on("message", (msg: { type?: string }) => {
    if (msg?.type === "stats") {
      const u = process.cpuUsage();
      process.send!({ type: "stats", cpuUserUs: u.user, cpuSystemUs: u.system } satisfies ServerStats);
    } else if (msg?.type === "memory") {
      const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, { used: s.space_used_size, size: s.space_size }]));
      process.send!({ type: "memory", memory: process.memoryUsage(), spaces } satisfies ServerMemory);
    } else if (msg?.type === "exit") {
      process.exit(0);
    }
  });
}
