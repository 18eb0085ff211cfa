import { execFileSync } from "node:child_process";
import path from "node:path";

export const root = process.cwd();

/**
 * Path of a pinned tool in .tools/bin, built from the Go module proxy on
 * first use (scripts/tools/install.sh). The first build can take minutes:
 * call it from a beforeAll with a long timeout.
 */
export function tool(name: "kustomize" | "promtool" | "connectconformance"): string {
  return execFileSync("bash", [path.join(root, "scripts", "tools", "install.sh"), name], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

/** A first Go build of a tool on a fresh machine (two shared cores). */
export const TOOL_BUILD_TIMEOUT_MS = 20 * 60_000;

/** Runs a tool; resolves with its output, or throws with its output in the message. */
export function run(bin: string, args: string[], cwd = root): string {
  try {
    return execFileSync(bin, args, { cwd, encoding: "utf8", maxBuffer: 64 * 1024 * 1024, stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${path.basename(bin)} ${args.join(" ")} failed:\n${e.stdout ?? ""}${e.stderr ?? e.message}`);
  }
}
