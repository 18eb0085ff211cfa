import type { DescMethod } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import type { Logger } from "../logger.js";
import { protocolOf, type RpcObserver } from "./outcome.js";

// Codes that mean the server (not the caller) has a problem.
const SERVER_FAULTS = new Set([Code.Unknown, Code.Internal, Code.DataLoss, Code.Unimplemented]);

/** One JSON log line per RPC: method, code, duration, protocol. */
export function rpcLog(logger: Logger): RpcObserver {
  const paths = new Map<DescMethod, string>(); // one string per method, not one per call
  return (req) => ({
    done({ code, durationSeconds, error }) {
      let method = paths.get(req.method);
      if (method === undefined) paths.set(req.method, (method = `/${req.service.typeName}/${req.method.name}`));
      const fields = {
        method,
        code,
        duration_ms: Math.round(durationSeconds * 1e6) / 1e3,
        protocol: protocolOf(req),
        ...(error ? { error: error.rawMessage } : {}),
      };
      if (error && SERVER_FAULTS.has(error.code)) logger.error("rpc", { ...fields, cause: error.cause });
      // Probes (Kubernetes, the gateway) call Health every few seconds: keep them out of info logs.
      else if (req.service.typeName === "grpc.health.v1.Health") logger.debug("rpc", fields);
      else logger.info("rpc", fields);
    },
  });
}
