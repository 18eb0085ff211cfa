import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT, repoRootFrom } from "./paths.js";

describe("REPO_ROOT", () => {
  it("is this repository's root", () => {
    expect(JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")).name).toBe("myevents-mesh");
    expect(existsSync(join(REPO_ROOT, "proto", "myevents", "v1"))).toBe(true);
  });

  it("is the same folder from the source and from the build in dist/ (npm start), so the token script and the mesh share .data/", () => {
    expect(repoRootFrom("file:///repo/services/runtime/paths.ts")).toBe("/repo/");
    expect(repoRootFrom("file:///repo/dist/services/runtime/paths.js")).toBe("/repo/");
  });
});
