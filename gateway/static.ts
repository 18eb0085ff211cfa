import { createReadStream, realpathSync, statSync, type Stats } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { pathOf, send, type NodeRequest, type NodeResponse } from "./http.js";

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".webmanifest": "application/manifest+json",
  ".txt": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".avif": "image/avif",
  ".ico": "image/x-icon",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
  ".wasm": "application/wasm",
};

/**
 * The web app's files (Vite's `dist/`) from one folder: the same origin as
 * the API, so the browser needs no CORS in production. Paths without a file
 * extension that name no file get index.html (client-side routes such as
 * /events/42); nothing outside the folder is ever served (no `..`, no
 * symlinks out, no dotfiles).
 */
export class StaticFiles {
  private constructor(private readonly root: string | undefined) {}

  /** Serves `root` if it is a folder; otherwise every request answers 404. */
  static open(root: string): StaticFiles {
    try {
      // The real path, so that every file served can be checked to lie inside it.
      const real = realpathSync(path.resolve(root));
      return new StaticFiles(statSync(real).isDirectory() ? real : undefined);
    } catch {
      return new StaticFiles(undefined); // no web app built: API only
    }
  }

  /** The folder served, if any. */
  get folder(): string | undefined {
    return this.root;
  }

  async handle(req: NodeRequest, res: NodeResponse): Promise<void> {
    if (req.method !== "GET" && req.method !== "HEAD") {
      return send(res, 405, { "content-type": "text/plain", allow: "GET, HEAD" }, "method not allowed\n");
    }
    const found = this.root ? await this.find(this.root, pathOf(req)) : undefined;
    if (!found) return send(res, 404, { "content-type": "text/plain" }, "not found\n");

    const { file, stats } = found;
    const etag = `"${stats.size.toString(16)}-${Math.floor(stats.mtimeMs).toString(16)}"`;
    const headers: Record<string, string> = {
      "content-type": CONTENT_TYPES[path.extname(file).toLowerCase()] ?? "application/octet-stream",
      "x-content-type-options": "nosniff",
      etag,
      "last-modified": stats.mtime.toUTCString(),
      // Vite fingerprints everything under assets/; the page itself must be revalidated.
      "cache-control": file.startsWith(path.join(this.root!, "assets") + path.sep) ? "public, max-age=31536000, immutable" : "no-cache",
    };
    if (req.headers["if-none-match"] === etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, "content-length": String(stats.size) });
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    await pipeline(createReadStream(file), res).catch(() => undefined); // the client went away
  }

  private async find(root: string, urlPath: string): Promise<{ file: string; stats: Stats } | undefined> {
    let decoded: string;
    try {
      decoded = decodeURIComponent(urlPath);
    } catch {
      return undefined;
    }
    if (decoded.includes("\0") || decoded.includes("\\")) return undefined;
    const segments = decoded.split("/").filter((s) => s !== "");
    // ".." and dotfiles (.env, .git) are never part of a web app.
    if (segments.some((s) => s.startsWith("."))) return undefined;
    const candidate = path.join(root, ...segments);
    const file = (await this.fileAt(root, candidate)) ?? (await this.fileAt(root, path.join(candidate, "index.html")));
    if (file) return file;
    // A client-side route (no extension): the app's page, which routes it.
    if (!path.extname(segments.at(-1) ?? "")) return this.fileAt(root, path.join(root, "index.html"));
    return undefined;
  }

  private async fileAt(root: string, file: string): Promise<{ file: string; stats: Stats } | undefined> {
    try {
      const real = await realpath(file);
      if (!real.startsWith(root + path.sep)) return undefined;
      const stats = await stat(real);
      return stats.isFile() ? { file: real, stats } : undefined;
    } catch {
      return undefined;
    }
  }
}
