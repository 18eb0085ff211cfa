// Shared helpers for the benchmark processes.
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The EventService definition from the .proto, as plain grpc-js sees it. */
export function loadEventService(): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync("myevents/v1/event_service.proto", {
    // .tools/protovalidate: scripts/protovalidate/install.sh puts buf/validate/validate.proto there.
    includeDirs: [`${ROOT}proto`, `${ROOT}node_modules/google-proto-files`, `${ROOT}.tools/protovalidate`],
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { myevents: { v1: { EventService: grpc.ServiceClientConstructor } } };
  return pkg.myevents.v1.EventService;
}

/** A port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Resident set size in bytes, from /proc/<pid>/status VmRSS. */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** What a server process answers to {type:"stats"} over IPC. */
export interface ServerStats {
  type: "stats";
  cpuUserUs: number;
  cpuSystemUs: number;
}

/** Makes a server process answer stats requests over IPC. */
export function answerStats(): void {
  process.on("message", (msg: { type?: string }) => {
    if (msg?.type === "stats") {
      const u = process.cpuUsage();
      process.send!({ type: "stats", cpuUserUs: u.user, cpuSystemUs: u.system } satisfies ServerStats);
    } else if (msg?.type === "exit") {
      process.exit(0);
    }
  });
}
