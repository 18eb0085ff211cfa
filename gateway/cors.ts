import { cors as connectCors } from "@connectrpc/connect";
import type { NodeRequest, NodeResponse } from "./http.js";
import { send } from "./http.js";

export interface CorsOptions {
  /** Exact origins ("https://app.example.com"); "*" allows any origin. */
  allowedOrigins: readonly string[];
  /** Methods beyond Connect's GET and POST (the REST routes'). */
  extraMethods?: readonly string[];
  /** Request headers beyond the protocols' own (e.g. authorization). */
  extraHeaders?: readonly string[];
}

/**
 * CORS for browsers on other origins (the Vite dev server, another app):
 * preflights from allowed origins are answered with what Connect, gRPC-Web
 * and REST need; other origins get 403 and no CORS headers, so the browser
 * stops there. Actual responses carry Access-Control-Allow-Origin only for
 * allowed origins.
 */
export class CorsPolicy {
  private readonly anyOrigin: boolean;
  private readonly origins: Set<string>;
  private readonly methods: string;
  private readonly headers: string;
  private readonly exposed: string;

  constructor(options: CorsOptions) {
    this.anyOrigin = options.allowedOrigins.includes("*");
    this.origins = new Set(options.allowedOrigins);
    this.methods = unique([...connectCors.allowedMethods, ...(options.extraMethods ?? [])]).join(", ");
    this.headers = unique([...connectCors.allowedHeaders, ...(options.extraHeaders ?? [])].map((h) => h.toLowerCase())).join(", ");
    this.exposed = unique(connectCors.exposedHeaders.map((h) => h.toLowerCase())).join(", ");
  }

  allows(origin: string): boolean {
    return this.anyOrigin || this.origins.has(origin);
  }

  /**
   * Applies the policy to a request: answers a preflight completely
   * (returns true), or sets the headers an actual response needs.
   */
  handle(req: NodeRequest, res: NodeResponse): boolean {
    const origin = header(req, "origin");
    const preflight = req.method === "OPTIONS" && header(req, "access-control-request-method") !== undefined;
    // Responses differ by Origin: caches must keep them apart.
    res.setHeader("vary", preflight ? "origin, access-control-request-method, access-control-request-headers" : "origin");
    if (origin === undefined) return false;
    const allowed = this.allows(origin);
    if (preflight) {
      if (!allowed) {
        send(res, 403, { "content-type": "text/plain" }, `origin ${origin} is not allowed\n`);
        return true;
      }
      res.writeHead(204, {
        "access-control-allow-origin": origin,
        "access-control-allow-methods": this.methods,
        "access-control-allow-headers": this.headers,
        "access-control-expose-headers": this.exposed,
        "access-control-max-age": "7200",
      });
      res.end();
      return true;
    }
    if (allowed) {
      res.setHeader("access-control-allow-origin", origin);
      res.setHeader("access-control-expose-headers", this.exposed);
    }
    return false;
  }
}

function header(req: NodeRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}
