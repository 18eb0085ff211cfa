// Builds the web app into web/dist when its sources changed since the last
// build: `npm start` runs it first (prestart), so a clean clone serves the
// app and an unchanged tree starts without waiting for Vite. `--force`
// always builds (`npm run build:web`).
import { createHash } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(fileURLToPath(new URL("..", import.meta.url)));
const web = path.join(root, "web");
const dist = path.join(web, "dist");
// A dotfile: the gateway never serves it.
const stampFile = path.join(dist, ".sources-hash");

/** Everything the bundle is made from: the app, the generated contracts it imports, the locked dependencies. */
const INPUTS = ["web/index.html", "web/vite.config.ts", "web/tsconfig.json", "web/src", "gen", "package-lock.json"];

async function filesUnder(relative: string): Promise<string[]> {
  const full = path.join(root, relative);
  try {
    const entries = await readdir(full, { withFileTypes: true, recursive: true });
    return entries.filter((e) => e.isFile()).map((e) => path.relative(root, path.join(e.parentPath, e.name)));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOTDIR") return [relative];
    throw err;
  }
}

export async function sourcesHash(): Promise<string> {
  const files = (await Promise.all(INPUTS.map(filesUnder))).flat().filter((f) => !f.endsWith(".test.ts")).sort();
  const hash = createHash("sha256");
  for (const file of files) hash.update(file).update("\0").update(await readFile(path.join(root, file))).update("\0");
  return hash.digest("hex");
}

/** Builds web/dist unless it was built from exactly these sources; returns whether it built. */
export async function buildWeb(options: { force?: boolean; log?: (line: string) => void } = {}): Promise<boolean> {
  const log = options.log ?? console.log;
  const force = options.force ?? false;
  const hash = await sourcesHash();
  const built = await readFile(stampFile, "utf8").catch(() => "");
  if (!force && built.trim() === hash) return false;

  let vite: typeof import("vite");
  try {
    vite = await import("vite");
  } catch {
    // An install without devDependencies: serve what was built before, or the API alone.
    log(`web app: vite is not installed, ${built ? "serving the previous build" : "the gateway serves the API only"} (run npm ci to build it)`);
    return false;
  }
  const started = Date.now();
  log("web app: building web/dist …");
  await vite.build({ configFile: path.join(web, "vite.config.ts"), logLevel: "warn" });
  await writeFile(stampFile, hash + "\n");
  log(`web app: built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return true;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  buildWeb({ force: process.argv.includes("--force") }).catch((err) => {
    console.error("web app: build failed:", err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
}
