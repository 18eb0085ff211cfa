// The breaking-change gate really gates: a copy of the workspace with a
// breaking edit fails `buf breaking` against the committed baseline, and
// an additive edit passes.
import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = process.cwd();
const buf = path.join(root, "node_modules", ".bin", "buf");
const baseline = path.join(root, "contracts", "baseline.binpb");

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A throwaway copy of the buf workspace with one file edited. */
async function workspaceWith(file: string, edit: (text: string) => string): Promise<string> {
  dir = await mkdtemp(path.join(tmpdir(), "contracts-"));
  await cp(path.join(root, "proto"), path.join(dir, "proto"), { recursive: true });
  await cp(path.join(root, "buf.yaml"), path.join(dir, "buf.yaml"));
  await symlink(path.join(root, "node_modules"), path.join(dir, "node_modules"));
  await symlink(path.join(root, ".tools"), path.join(dir, ".tools")); // buf/validate (scripts/protovalidate)
  const target = path.join(dir, "proto", file);
  await writeFile(target, edit(await readFile(target, "utf8")));
  return dir;
}

async function breaking(cwd: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(buf, ["breaking", "proto", "--against", baseline], { cwd });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, output: e.stdout + e.stderr };
  }
}

describe("contract breaking-change gate", () => {
  it("passes for the committed contracts", async () => {
    expect(await breaking(root)).toEqual({ code: 0, output: "" });
  });

  it("fails, with buf's message, when a field is renumbered", async () => {
    const ws = await workspaceWith("myevents/v1/event.proto", (t) => t.replace("int32 capacity = 7 ", "int32 capacity = 17 "));
    const result = await breaking(ws);
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(/Previously present field "7" with name "capacity" on message "Event" was deleted/);
  });

  it("fails when an RPC is removed", async () => {
    const ws = await workspaceWith("myevents/v1/booking_service.proto", (t) => t.replace(/  rpc GetBooking[\s\S]*?\n  }\n/, ""));
    const result = await breaking(ws);
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(/Previously present RPC "GetBooking" on service "BookingService" was deleted/);
  });

  it("allows additive changes", async () => {
    const ws = await workspaceWith("myevents/v1/event.proto", (t) => t.replace("  EventState state = 9;\n", "  EventState state = 9;\n  string description = 10;\n"));
    expect((await breaking(ws)).code).toBe(0);
  });
});
