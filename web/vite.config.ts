import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

// The browser app. `npm run dev:web` serves it with the API calls proxied
// to a running gateway (GATEWAY_URL, default http://localhost:8080), so the
// page and the API share one origin exactly as when the gateway serves the
// built files (`npm start`).
const gateway = process.env.GATEWAY_URL ?? "http://localhost:8080";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  // JSX through esbuild's automatic runtime: no Babel, no React plugin needed.
  esbuild: { jsx: "automatic" },
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true, target: "es2022" },
  server: {
    // The generated code lives in ../gen (one copy for services and browser).
    fs: { allow: [fileURLToPath(new URL("..", import.meta.url))] },
    proxy: {
      // Connect RPCs ("/myevents.v1.EventService/ListEvents") and REST ("/v1/...").
      "^/myevents\\.v1\\.": { target: gateway, changeOrigin: true },
      "/v1/": { target: gateway, changeOrigin: true },
    },
  },
});
