// The Connect conformance suite (connectrpc.com/conformance, DESIGN.md "Protocol
// code the project writes itself") against the services' runtime: the suite's
// reference client sends every Connect, gRPC and gRPC-Web case that
// config.yaml declares to server.ts, which serves the ConformanceService
// through startService (the unary gRPC fast path, the undecodable-request
// answers, the shared interceptors, connect-node for the rest).
import { spawn } from "node:child_process";
import path from "node:path";
import { beforeAll, expect, it } from "vitest";
import { root, tool, TOOL_BUILD_TIMEOUT_MS } from "../deploy/tools.js";

const HERE = path.join(root, "test", "conformance");
/** Cases that fail on purpose, each explained in the file. */
const KNOWN_FAILING = path.join(HERE, "known-failing.txt");

let runner: string;
beforeAll(() => {
  runner = tool("connectconformance");
}, TOOL_BUILD_TIMEOUT_MS);

/** Runs the suite; resolves with its exit code, its report (stdout) and the server's logs (stderr). */
function runSuite(): Promise<{ code: number | null; report: string; logs: string }> {
  const args = ["--mode", "server", "--conf", path.join(HERE, "config.yaml"), "--known-failing", `@${KNOWN_FAILING}`];
  args.push("--", process.execPath, "--import", "tsx", path.join(HERE, "server.ts"));
  return new Promise((resolve, reject) => {
    const child = spawn(runner, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let report = "";
    let logs = "";
    child.stdout.on("data", (c: Buffer) => (report += c.toString()));
    child.stderr.on("data", (c: Buffer) => (logs += c.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, report, logs }));
  });
}

it("passes every conformance case the runtime declares it supports", async () => {
  const { code, report, logs } = await runSuite();
  // The report names each failing case with what differed; the logs' tail says what the server saw.
  expect(code, `${report}\n--- server logs (tail) ---\n${logs.slice(-4000)}`).toBe(0);
  expect(report).toMatch(/\d+ passed, 0 failed/);
}, 15 * 60_000);
