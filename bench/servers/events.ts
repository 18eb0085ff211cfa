// The project's EventService, started the way production starts it:
// startEventsService with the runtime's default interceptors, the embedded
// in-memory store, LOG_LEVEL=info logging to stdout (the parent redirects it).
import { readEventsConfig, startEventsService } from "../../services/events/app.js";
import { EnvReader } from "../../services/runtime/config.js";
import { createLogger } from "../../services/runtime/logger.js";
import { answerStats } from "./ipc.js";

const config = readEventsConfig(
  new EnvReader({ PORT: process.env.PORT ?? "0", ADMIN_PORT: process.env.ADMIN_PORT ?? "0", LOG_LEVEL: "info", HOST: "127.0.0.1", JWT_SECRET: process.env.JWT_SECRET }),
);
const logger = createLogger(config.runtime.logLevel, { service: "events" });
const running = await startEventsService(config, { logger });
if (process.env.BENCH_ALLOC_PROFILE) await sampleAllocations(process.env.BENCH_ALLOC_PROFILE);
answerStats();
process.send!({ type: "ready", port: running.port });

/**
 * bench/profile.ts --alloc: samples where the server allocates, from ready
 * to exit, counting objects that the young and old GC collected too (Node's
 * --heap-prof keeps only what is still alive at the end). ALLOC_PROF_OLD=1
 * leaves out what scavenges collected: what remains reached the old space.
 */
async function sampleAllocations(file: string) {
  const { Session } = await import("node:inspector/promises");
  const { writeFileSync } = await import("node:fs");
  const session = new Session();
  session.connect();
  await session.post("HeapProfiler.startSampling", { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: !process.env.ALLOC_PROF_OLD } as never);
  const stop = process.exit.bind(process);
  process.exit = ((code?: number) => {
    void session.post("HeapProfiler.stopSampling").then(({ profile }) => {
      writeFileSync(file, JSON.stringify(profile));
      stop(code);
    });
  }) as typeof process.exit;
}
