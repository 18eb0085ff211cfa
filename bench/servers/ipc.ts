// The measured servers' side of the harness's IPC, in a module of its own:
// importing bench/lib.ts would load @grpc/grpc-js and protobufjs into the
// project's server, which production never loads (their memory counted in (a)'s RSS).

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
