import { Code, ConnectError, createConnectRouter, type ConnectRouter, type ConnectRouterOptions, type ContextValues } from "@connectrpc/connect";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import type { Logger } from "../services/runtime/logger.js";
import { pathOf, send, type NodeRequest, type NodeResponse } from "./http.js";

/** The compressions the gateway accepts and offers (connect-node's adapter default). */
export const ACCEPT_COMPRESSION = [compressionGzip, compressionBrotli];

export interface ConnectHandlerOptions extends ConnectRouterOptions {
  routes(router: ConnectRouter): void;
  contextValues(req: NodeRequest): ContextValues;
  /** Requests to paths no route serves. */
  fallback(req: NodeRequest, res: NodeResponse): void;
  logger: Logger;
}

/**
 * connect-node's Node adapter (connectNodeAdapter), built from the same
 * parts, with one addition: a request whose body was already read, in
 * part or whole, by the unary fast path (which then found something it
 * leaves to connect: bad JSON, undecodable bytes, a malformed envelope, a
 * body over the limit) is answered from the same bytes (`body`), so
 * connect-node's own error handling answers it.
 */
export function connectHandler(options: ConnectHandlerOptions): (req: NodeRequest, res: NodeResponse, body?: AsyncIterable<Uint8Array>) => void {
  const router = createConnectRouter({ ...options, acceptCompression: options.acceptCompression ?? ACCEPT_COMPRESSION });
  options.routes(router);
  const paths = new Map<string, UniversalHandler>();
  for (const handler of router.handlers) paths.set(handler.requestPath, handler);
  return (req, res, body) => {
    const handler = paths.get(pathOf(req));
    if (!handler) return options.fallback(req, res);
    let request;
    try {
      request = universalRequestFromNodeRequest(req, res, undefined, options.contextValues(req));
    } catch (err) {
      // No authority (an HTTP/1.0 request without Host): connect-node throws, which would end the process.
      return send(res, 400, { "content-type": "text/plain" }, `${ConnectError.from(err).rawMessage}\n`);
    }
    if (body !== undefined) request.body = body;
    handler(request)
      .then((response) => universalResponseToNodeResponse(response, res))
      .catch((reason: unknown) => {
        // Aborted: the client went away while the response was written.
        if (ConnectError.from(reason).code === Code.Aborted) return;
        options.logger.error("rpc handler failed", { method: `${handler.service.typeName}/${handler.method.name}`, error: reason });
      });
  };
}
