import type { DescMethod } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import type { LogFields, Logger } from "../logger.js";
import { protocolOf, type CallObserver, type RpcObserver, type RpcOutcome } from "./outcome.js";

// Codes that mean the server (not the caller) has a problem.
const SERVER_FAULTS = new Set([Code.Unknown, Code.Internal, Code.DataLoss, Code.Unimplemented]);

/** One JSON log line per RPC: method, code, duration, protocol. */
export function rpcLog(logger: Logger): RpcObserver {
  const paths = new Map<DescMethod, string>(); // one string per method, not one per call
  const pathOf = (req: Req) => {
    let method = paths.get(req.method);
    if (method === undefined) paths.set(req.method, (method = `/${req.service.typeName}/${req.method.name}`));
    return method;
  };
  return (req) => new RpcLogLine(logger, req, pathOf);
}

type Req = Parameters<RpcObserver>[0];

/** A class rather than a closure per call: one object per call. */
class RpcLogLine implements CallObserver {
  constructor(
    private readonly logger: Logger,
    private readonly req: Req,
    private readonly pathOf: (req: Req) => string,
  ) {}

  done({ code, durationSeconds, error }: RpcOutcome): void {
    const req = this.req;
    const fields: LogFields = {
      method: this.pathOf(req),
      code,
      duration_ms: Math.round(durationSeconds * 1e6) / 1e3,
      protocol: protocolOf(req),
    };
    if (error) fields.error = error.rawMessage;
    if (error && SERVER_FAULTS.has(error.code)) this.logger.error("rpc", { ...fields, cause: error.cause });
    // Probes (Kubernetes, the gateway) call Health every few seconds: keep them out of info logs.
    else if (req.service.typeName === "grpc.health.v1.Health") this.logger.debug("rpc", fields);
    else this.logger.info("rpc", fields);
  }
}
