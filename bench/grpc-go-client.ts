// Scenario (a)'s second load client: bench/grpc-load (grpc-go), built here
// with the Go toolchain into .tools/bin, and driven one run at a time.
import { spawn, spawnSync } from "node:child_process";
import { createInterface } from "node:readline";
import { ROOT } from "./lib.js";
import type { LoadResult } from "./load.js";

/** Builds bench/grpc-load into .tools/bin/grpc-load (incremental: about a second when nothing changed); returns its path. */
export function buildGrpcGoClient(): string {
  const out = `${ROOT}.tools/bin/grpc-load`;
  const env = { ...process.env, PATH: `${process.env.PATH}:/usr/local/go/bin` };
  const build = spawnSync("go", ["build", "-o", out, "."], { cwd: `${ROOT}bench/grpc-load`, env, encoding: "utf8" });
  if (build.error || build.status !== 0) {
    throw new Error(`building bench/grpc-load needs the Go toolchain and its module proxy: ${build.error?.message ?? build.stderr.trim()}`);
  }
  return out;
}

/**
 * One run of the grpc-go client: its warm-up, then `between()` (read the
 * servers' CPU counters), then the measured calls. Resolves to the load
 * result and the client's own CPU per measured call in µs.
 */
export async function runGrpcGoClient(
  binary: string,
  opts: { port: number; eventId: string; warmup: number; calls: number; concurrency: number },
  between: () => void | Promise<void>,
): Promise<LoadResult & { clientCpuUsPerCall: number }> {
  const args = ["-target", `127.0.0.1:${opts.port}`, "-event", opts.eventId, "-warmup", String(opts.warmup), "-calls", String(opts.calls), "-concurrency", String(opts.concurrency), "-pause"];
  // One OS thread for Go code: it takes well under a core at these rates, and the server keeps the other.
  const child = spawn(binary, args, { env: { ...process.env, GOMAXPROCS: "1" }, stdio: ["pipe", "pipe", "inherit"] });
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  let result: (LoadResult & { cpuSeconds: number; firstError?: string }) | undefined;
  for await (const line of createInterface({ input: child.stdout! })) {
    const msg = JSON.parse(line) as { warmedUp?: boolean } & typeof result;
    if (msg?.warmedUp) {
      await between();
      child.stdin!.write("\n");
    } else {
      result = msg;
    }
  }
  const code = await exited;
  if (code !== 0 || !result) throw new Error(`bench/grpc-load exited with ${code} (target :${opts.port})`);
  const { cpuSeconds, firstError, ...load } = result;
  if (firstError) console.error(`grpc-load: first error: ${firstError}`);
  return { ...load, clientCpuUsPerCall: (cpuSeconds * 1e6) / opts.calls };
}
