// The REST breaking-change gate: envoy/rest-routes.json is what REST clients
// rely on; the google.api.http annotations in proto/ must keep serving every
// committed route the same way, and every route they serve must be committed.
// The gate is proven on a throwaway copy of the workspace with edited protos.
import { cp, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  deriveRestRoutes,
  diffRestRoutes,
  formatRestRoutes,
  readCommittedRestRoutes,
  restRouteProblems,
  UPDATE_COMMAND,
  type RestRoute,
} from "../../envoy/update-rest-routes.js";

const root = process.cwd();

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

/** A copy of the buf workspace with one proto edited. */
async function workspaceWith(file: string, edit: (text: string) => string): Promise<string> {
  dir = await mkdtemp(path.join(tmpdir(), "rest-routes-"));
  await cp(path.join(root, "proto"), path.join(dir, "proto"), { recursive: true });
  await cp(path.join(root, "buf.yaml"), path.join(dir, "buf.yaml"));
  await symlink(path.join(root, "node_modules"), path.join(dir, "node_modules"));
  await symlink(path.join(root, ".tools"), path.join(dir, ".tools")); // buf/validate (scripts/protovalidate)
  const target = path.join(dir, "proto", file);
  const before = await readFile(target, "utf8");
  const after = edit(before);
  expect(after, "the edit must change the file").not.toBe(before);
  await writeFile(target, after);
  return dir;
}

async function gate(workspace: string): Promise<string[]> {
  const { routes: committed } = await readCommittedRestRoutes(root);
  return restRouteProblems(diffRestRoutes(committed, await deriveRestRoutes(workspace)));
}

describe("REST routes gate (envoy/rest-routes.json)", () => {
  it("matches the current protos exactly, as the update script would write it", async () => {
    const committed = await readCommittedRestRoutes(root);
    const current = await deriveRestRoutes(root);
    expect(restRouteProblems(diffRestRoutes(committed.routes, current))).toEqual([]);
    expect(committed.text, `envoy/rest-routes.json is not in the script's format: run ${UPDATE_COMMAND}`).toBe(formatRestRoutes(current));
  });

  it("covers every RPC of the contracts", async () => {
    const { routes } = await readCommittedRestRoutes(root);
    const rpcs = new Set(routes.map((r: RestRoute) => r.rpc));
    for (const rpc of ["EventService.CreateLocation", "EventService.ListEvents", "BookingService.CreateBooking", "NotificationService.Subscribe"]) {
      expect(rpcs).toContain(`myevents.v1.${rpc}`);
    }
  });

  it("fails when a committed route disappears", async () => {
    const ws = await workspaceWith("myevents/v1/booking_service.proto", (t) => t.replace('get: "/v1/bookings/{id}"', 'get: "/v1/booking/{id}"'));
    const problems = await gate(ws);
    expect(problems).toContain("breaking: REST route removed: GET /v1/bookings/{id} -> myevents.v1.BookingService.GetBooking (body \"\")");
    expect(problems.at(-1)).toMatch(new RegExp(`If this REST change is intended.*run \`${UPDATE_COMMAND}\``));
  });

  it("fails when a committed route changes its body mapping", async () => {
    const ws = await workspaceWith("myevents/v1/event_service.proto", (t) => t.replace('post: "/v1/locations"\n      body: "location"', 'post: "/v1/locations"\n      body: "*"'));
    expect(await gate(ws)).toContain(
      'breaking: REST route changed: POST /v1/locations -> myevents.v1.EventService.CreateLocation (body "location") is now POST /v1/locations -> myevents.v1.EventService.CreateLocation (body "*")',
    );
  });

  it("fails when a committed route changes its HTTP method", async () => {
    const ws = await workspaceWith("myevents/v1/event_service.proto", (t) => t.replace('post: "/v1/events/{id}:cancel"', 'delete: "/v1/events/{id}:cancel"'));
    const problems = await gate(ws);
    expect(problems).toContain('breaking: REST route removed: POST /v1/events/{id}:cancel -> myevents.v1.EventService.CancelEvent (body "*")');
    expect(problems).toContain('new REST route not in envoy/rest-routes.json: DELETE /v1/events/{id}:cancel -> myevents.v1.EventService.CancelEvent (body "*")');
  });

  it("asks for an added route to be committed", async () => {
    const ws = await workspaceWith("myevents/v1/event_service.proto", (t) =>
      t.replace('option (google.api.http) = {get: "/v1/events/{id}"};', 'option (google.api.http) = {\n      get: "/v1/events/{id}"\n      additional_bindings {get: "/v1/events/by-id/{id}"}\n    };'),
    );
    expect(await gate(ws)).toEqual([
      'new REST route not in envoy/rest-routes.json: GET /v1/events/by-id/{id} -> myevents.v1.EventService.GetEvent (body "")',
      `Run \`${UPDATE_COMMAND}\` and commit envoy/rest-routes.json.`,
    ]);
  });
});
