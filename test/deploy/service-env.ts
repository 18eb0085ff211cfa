import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { root } from "./tools.js";

/** The Node components of the mesh and the folders whose code each process runs. */
export const NODE_COMPONENTS: Record<string, string[]> = {
  events: ["services/events", "services/runtime", "services/messaging", "services/outbox"],
  bookings: ["services/bookings", "services/runtime", "services/messaging", "services/outbox"],
  notifications: ["services/notifications", "services/runtime", "services/messaging", "services/outbox"],
  gateway: ["gateway", "services/runtime"],
};

function sources(dir: string): string[] {
  return readdirSync(path.join(root, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts") && !/\.(test|contract|d)\.ts$|test-support\.ts$|testing\.ts$/.test(f))
    .map((f) => path.join(root, dir, f));
}

/**
 * Environment variables a component's process reads, found in its code:
 * `env.<reader>("NAME")` and `` env.<reader>(`${prefix}NAME`) `` (the
 * EnvReader), `process.env.NAME`, and `variable: "NAME"` (the gateway's
 * upstream table). Undefined while the component's folder does not exist.
 */
export function variablesRead(component: string): Set<string> | undefined {
  const dirs = NODE_COMPONENTS[component];
  if (!dirs || !existsSync(path.join(root, dirs[0]!))) return undefined;
  const names = new Set<string>();
  const patterns = [
    /env\.\w+\(\s*(?:"([A-Z][A-Z0-9_]*)"|`\$\{\w+\}([A-Z][A-Z0-9_]*)`)/g,
    /process\.env(?:\.([A-Z][A-Z0-9_]*)|\[\s*"([A-Z][A-Z0-9_]*)"\s*\])/g,
    /variable:\s*"([A-Z][A-Z0-9_]*)"/g,
  ];
  for (const file of dirs.filter((d) => existsSync(path.join(root, d))).flatMap(sources)) {
    const text = readFileSync(file, "utf8");
    for (const pattern of patterns) for (const m of text.matchAll(pattern)) names.add((m[1] ?? m[2])!);
  }
  return names;
}
