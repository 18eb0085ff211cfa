import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { SERVICE_NODE_FLAGS } from "./node-flags.js";
import { REPO_ROOT } from "./paths.js";

const run = promisify(execFile);
const read = (file: string) => readFileSync(join(REPO_ROOT, file), "utf8");

describe("the node options every service is started with", () => {
  it("are in every start script", () => {
    const scripts = (JSON.parse(read("package.json")) as { scripts: Record<string, string> }).scripts;
    const starts = Object.entries(scripts).filter(([name]) => /^start(:|$)/.test(name));
    expect(starts.map(([name]) => name).sort()).toEqual(["start", "start:bookings", "start:events", "start:gateway", "start:notifications"]);
    for (const [name, command] of starts) {
      const options = /^exec node ((?:--\S+ )*)dist\//.exec(command)?.[1]?.trim().split(" ") ?? [];
      expect(options, name).toEqual(expect.arrayContaining([...SERVICE_NODE_FLAGS]));
    }
  });

  it("are in every Node image's command", () => {
    const commands = [...read("deploy/docker/Dockerfile").matchAll(/^CMD (\["node", [^\n]+\])$/gm)].map((m) => JSON.parse(m[1]!) as string[]);
    expect(commands).toHaveLength(4);
    for (const command of commands) expect(command.slice(1, -1), command.at(-1)).toEqual([...SERVICE_NODE_FLAGS]);
  });

  it("size V8's young generation from the start (what node's default grows to under load)", async () => {
    const newSpaceMiB = async (options: readonly string[]) => {
      const script = `console.log(require("v8").getHeapSpaceStatistics().find((s) => s.space_name === "new_space").space_size / 2 ** 20)`;
      const { stdout } = await run(process.execPath, [...options, "-e", script], { env: { ...process.env, NODE_OPTIONS: "" } });
      return Number(stdout);
    };
    // A 16 MB semi-space committed in a fresh process, against node's 1 MB.
    expect(await newSpaceMiB(SERVICE_NODE_FLAGS)).toBeGreaterThanOrEqual(16);
    expect(await newSpaceMiB([])).toBeLessThan(4);
  });
});
