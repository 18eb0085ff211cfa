import http from "node:http";
import type { Registry } from "prom-client";
import type { HealthMonitor } from "./health.js";

/**
 * The admin port, kept apart from the API port so that it is never exposed
 * through the edge: /metrics for Prometheus, /healthz for liveness (the
 * process answers), /readyz for readiness (dependencies up, not draining).
 */
export function createAdminServer(registry: Registry, health: HealthMonitor): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "text/plain", "method not allowed\n");
    switch (path) {
      case "/metrics":
        registry.metrics().then(
          (body) => send(res, 200, registry.contentType, body),
          (err: Error) => send(res, 500, "text/plain", `${err.message}\n`),
        );
        return;
      case "/healthz":
        return send(res, 200, "application/json", JSON.stringify({ status: "alive" }) + "\n");
      case "/readyz": {
        const ready = health.isServing;
        const body = { status: ready ? "ready" : "not ready", failing: health.failures };
        return send(res, ready ? 200 : 503, "application/json", JSON.stringify(body) + "\n");
      }
      default:
        return send(res, 404, "text/plain", "not found\n");
    }
  });
}

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
  res.end(body);
}
