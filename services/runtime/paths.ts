import { fileURLToPath } from "node:url";

/**
 * The repository's root folder, from the URL of this module: the source
 * (services/runtime/) under tsx and tests, or the build (dist/services/runtime/)
 * under `npm start`. Files the processes share (.data/, .tools/) live there.
 */
export function repoRootFrom(moduleUrl: string): string {
  return fileURLToPath(new URL(moduleUrl.includes("/dist/services/runtime/") ? "../../.." : "../..", moduleUrl));
}

export const REPO_ROOT = repoRootFrom(import.meta.url);
