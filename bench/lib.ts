// Shared helpers for the benchmark processes.
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, loadavg } from "node:os";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { ADMIN_ROLE, signToken } from "../services/runtime/auth/tokens.js";
import { REPO_ROOT } from "../services/runtime/paths.js";
import { PROTO_INCLUDE_DIRS } from "../test/support/protos.js";

/** The repository root (with a trailing slash), from bench/ as from its compiled copy in dist/bench/. */
export const ROOT = REPO_ROOT;

/** The EventService definition from the .proto, as plain grpc-js sees it. */
export function loadEventService(): grpc.ServiceClientConstructor {
  const def = protoLoader.loadSync("myevents/v1/event_service.proto", {
    includeDirs: PROTO_INCLUDE_DIRS,
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { myevents: { v1: { EventService: grpc.ServiceClientConstructor } } };
  return pkg.myevents.v1.EventService;
}

/**
 * Headers of the benchmarks' mutating calls (seeding): an admin token
 * signed with the run's JWT_SECRET, which the servers under test verify.
 */
export async function mutationHeaders(): Promise<Record<string, string>> {
  const token = await signToken(process.env.JWT_SECRET!, { subject: "bench", roles: [ADMIN_ROLE], ttlSeconds: 3_600 });
  return { authorization: `Bearer ${token}` };
}

/** The same, as grpc-js metadata. */
export async function mutationMetadata(): Promise<grpc.Metadata> {
  const md = new grpc.Metadata();
  for (const [key, value] of Object.entries(await mutationHeaders())) md.set(key, value);
  return md;
}

/** CPU time (user + system) a process has used so far, in microseconds, from /proc/<pid>/stat. */
export function cpuOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces) start after ") ".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS;
}
// Linux's USER_HZ, which /proc reports in: 100 on every mainstream kernel.
const CLOCK_TICKS = 100;

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

/** The q-quantile (0..1) of ascending-sorted values (nearest rank). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Rounded to two decimals, for reports. */
export const round2 = (x: number): number => Math.round(x * 100) / 100;

/**
 * The machine a report is about, as every benchmark heads it. The 1-minute
 * load average before (and, set by the caller, after) the run tells a reader
 * whether the machine was shared.
 */
export function machineInfo() {
  return {
    cores: cpus().length,
    cpuModel: cpus()[0]?.model ?? "unknown",
    node: process.version,
    date: new Date().toISOString(),
    loadBefore: round2(loadavg()[0]!),
    loadAfter: NaN,
  };
}
export type MachineInfo = ReturnType<typeof machineInfo>;

/** Count, p50/p90/p99 and max of latencies in ms (NaN when there are none). */
export function latencySummary(values: number[]): { count: number; p50Ms: number; p90Ms: number; p99Ms: number; maxMs: number } {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) return { count: 0, p50Ms: NaN, p90Ms: NaN, p99Ms: NaN, maxMs: NaN };
  return {
    count: sorted.length,
    p50Ms: round2(quantile(sorted, 0.5)),
    p90Ms: round2(quantile(sorted, 0.9)),
    p99Ms: round2(quantile(sorted, 0.99)),
    maxMs: round2(sorted[sorted.length - 1]!),
  };
}
