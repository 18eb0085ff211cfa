// The REST breaking-change gate. envoy/rest-routes.json is the committed
// table of every REST route the edge serves, derived from the
// google.api.http annotations in proto/. test/edge-config/rest-routes.test.ts
// fails when the protos no longer serve a committed route the same way
// (removed, or changed method/body/RPC), and when a new route is not yet
// committed. `buf breaking` does not see these: an annotation change keeps
// the wire format but breaks every REST client.
//
// To change the REST surface on purpose (after its clients have moved), run
//   npx tsx envoy/update-rest-routes.ts
// and commit the table with the proto change, saying why.
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { loadContracts } from "./contracts.js";

export const REST_ROUTES_FILE = path.join("envoy", "rest-routes.json");
export const UPDATE_COMMAND = "npx tsx envoy/update-rest-routes.ts";

export interface RestRoute {
  method: string;
  /** Path template as annotated, e.g. /v1/events/{event_id}/bookings */
  path: string;
  /** Request field mapped to the body ("" none, "*" all). */
  body: string;
  /** Response field sent as the body; omitted when the whole response is. */
  responseBody?: string;
  /** The RPC it calls, e.g. myevents.v1.EventService.GetEvent */
  rpc: string;
}

export interface RestRouteTable {
  $comment: string;
  routes: RestRoute[];
}

/** Every REST route the current protos declare, in a stable order. */
export async function deriveRestRoutes(root: string): Promise<RestRoute[]> {
  const { services } = await loadContracts(root);
  const routes: RestRoute[] = [];
  for (const s of services) {
    for (const m of s.methods) {
      for (const b of m.http) {
        routes.push({ method: b.method, path: b.path, body: b.body, ...(b.responseBody ? { responseBody: b.responseBody } : {}), rpc: m.fullName });
      }
    }
  }
  return routes.sort((a, b) => (a.path === b.path ? a.method.localeCompare(b.method) : a.path.localeCompare(b.path)));
}

export function formatRestRoutes(routes: RestRoute[]): string {
  const table: RestRouteTable = {
    $comment: `Every REST route of the edge, derived from the google.api.http annotations in proto/. Removing or changing one breaks REST clients (test/edge-config/rest-routes.test.ts). Regenerate on purpose with: ${UPDATE_COMMAND}`,
    routes,
  };
  return JSON.stringify(table, null, 2) + "\n";
}

export async function readCommittedRestRoutes(root: string): Promise<{ text: string; routes: RestRoute[] }> {
  const text = await readFile(path.join(root, REST_ROUTES_FILE), "utf8");
  return { text, routes: (JSON.parse(text) as RestRouteTable).routes };
}

/** One route's identity: its method and path shape ({id} and {event_id} alike). */
function routeKey(r: RestRoute): string {
  return `${r.method} ${r.path.replace(/\{[^}]*\}/g, "{}")}`;
}

function describeRoute(r: RestRoute): string {
  return `${r.method} ${r.path} -> ${r.rpc} (body ${JSON.stringify(r.body)}${r.responseBody ? `, response_body ${JSON.stringify(r.responseBody)}` : ""})`;
}

export interface RestRouteDiff {
  removed: RestRoute[];
  changed: { before: RestRoute; after: RestRoute }[];
  added: RestRoute[];
}

export function diffRestRoutes(committed: RestRoute[], current: RestRoute[]): RestRouteDiff {
  const now = new Map(current.map((r) => [routeKey(r), r]));
  const before = new Map(committed.map((r) => [routeKey(r), r]));
  const diff: RestRouteDiff = { removed: [], changed: [], added: [] };
  for (const [key, old] of before) {
    const cur = now.get(key);
    if (!cur) diff.removed.push(old);
    else if (describeRoute(cur) !== describeRoute(old)) diff.changed.push({ before: old, after: cur });
  }
  for (const [key, cur] of now) if (!before.has(key)) diff.added.push(cur);
  return diff;
}

/** The gate's verdict: problems to fix, empty when the table matches the protos. */
export function restRouteProblems(diff: RestRouteDiff): string[] {
  const problems: string[] = [];
  for (const r of diff.removed) problems.push(`breaking: REST route removed: ${describeRoute(r)}`);
  for (const { before, after } of diff.changed) problems.push(`breaking: REST route changed: ${describeRoute(before)} is now ${describeRoute(after)}`);
  for (const r of diff.added) problems.push(`new REST route not in ${REST_ROUTES_FILE}: ${describeRoute(r)}`);
  if (problems.length > 0) {
    problems.push(
      diff.removed.length + diff.changed.length > 0
        ? `If this REST change is intended (its clients have moved), run \`${UPDATE_COMMAND}\` and commit ${REST_ROUTES_FILE} with the change.`
        : `Run \`${UPDATE_COMMAND}\` and commit ${REST_ROUTES_FILE}.`,
    );
  }
  return problems;
}

async function main(): Promise<void> {
  const root = process.cwd();
  const current = await deriveRestRoutes(root);
  const previous = await readCommittedRestRoutes(root).then((c) => c.routes, () => [] as RestRoute[]);
  const diff = diffRestRoutes(previous, current);
  await writeFile(path.join(root, REST_ROUTES_FILE), formatRestRoutes(current));
  const lines = [
    ...diff.removed.map((r) => `  removed  ${describeRoute(r)}`),
    ...diff.changed.map((c) => `  changed  ${describeRoute(c.before)}\n        -> ${describeRoute(c.after)}`),
    ...diff.added.map((r) => `  added    ${describeRoute(r)}`),
  ];
  console.log(`${REST_ROUTES_FILE}: ${current.length} routes${lines.length ? `\n${lines.join("\n")}` : " (unchanged)"}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
