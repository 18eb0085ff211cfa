import { fromBinary, type DescMethodUnary, type DescService, type Message } from "@bufbuild/protobuf";
import { createClient, createContextValues, type Interceptor, type Transport, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/health/v1/health_pb.js";
import type { Dependency } from "../services/runtime/health.js";
import { grpcUnary, grpcUnaryBinary } from "./grpc-unary-client.js";

/** A service process behind the gateway and the contracts it serves. */
export interface Upstream {
  /** Short name for logs, metrics and /readyz, e.g. "events". */
  name: string;
  url: string;
  services: readonly DescService[];
  /** gRPC over one HTTP/2 connection, shared by every call to this upstream. */
  transport: Transport;
  /** A unary call on that same connection, without connect-node's streaming pipeline. */
  unary(method: DescMethodUnary, signal: AbortSignal, timeoutMs: number | undefined, header: Headers, input: Message): Promise<Message>;
  /**
   * The same with the request already in protobuf binary (as a binary
   * caller sent it); resolves to the response's bytes as the service sent
   * them, so the gateway need not decode and encode them again.
   */
  unaryBinary(method: DescMethodUnary, signal: AbortSignal, timeoutMs: number | undefined, header: Headers, input: Uint8Array): Promise<Uint8Array>;
  /** Closes the connection (at shutdown). */
  close(): void;
}

/** `interceptors`: the gateway's client-side ones (trace propagation, grpc_client_* metrics). */
export function connectUpstream(name: string, url: string, services: readonly DescService[], interceptors: Interceptor[] = []): Upstream {
  // Pings keep long-lived streams (Subscribe) honest: a dead connection is
  // noticed and its calls fail instead of hanging.
  const sessions = new Http2SessionManager(url, { pingIntervalMs: 30_000, pingTimeoutMs: 10_000 });
  const basePath = new URL(url).pathname.replace(/\/+$/, "");
  return {
    name,
    url,
    services,
    transport: createGrpcTransport({ baseUrl: url, sessionManager: sessions, interceptors }),
    unary: withInterceptors(interceptors, url, (req, timeoutMs) => grpcUnary(sessions, basePath, req.method as DescMethodUnary, req.signal, timeoutMs, req.header, req.message)),
    unaryBinary: binaryWithInterceptors(interceptors, url, (req, timeoutMs, input) =>
      grpcUnaryBinary(sessions, basePath, req.method as DescMethodUnary, req.signal, timeoutMs, req.header, input),
    ),
    close: () => sessions.abort(),
  };
}

/**
 * The direct unary call wrapped in the same client interceptors as the
 * transport (trace propagation, grpc_client_* metrics), the first one
 * outermost as in connect; they see connect's request and response shapes.
 */
function withInterceptors(
  interceptors: Interceptor[],
  baseUrl: string,
  call: (req: UnaryRequest, timeoutMs: number | undefined) => Promise<Message>,
): Upstream["unary"] {
  return async (method, signal, timeoutMs, header, input) => {
    const innermost = async (req: UnaryRequest): Promise<UnaryResponse> => ({
      stream: false,
      service: req.service,
      method: req.method,
      header: new Headers(),
      trailer: new Headers(),
      message: await call(req, timeoutMs),
    });
    const run = interceptors.reduceRight<(req: UnaryRequest) => Promise<UnaryResponse>>(
      (next, interceptor) => interceptor(next as never) as never,
      innermost,
    );
    const res = await run({
      stream: false,
      service: method.parent,
      method,
      requestMethod: "POST",
      url: `${baseUrl.replace(/\/+$/, "")}/${method.parent.typeName}/${method.name}`,
      signal,
      header,
      contextValues: createContextValues(),
      message: input,
    } as UnaryRequest);
    return res.message;
  };
}

/**
 * The binary call in the same client interceptors. They observe the call
 * (span, metrics) and never rewrite messages, so the bytes go out and come
 * back as they are; a message is decoded only if an interceptor reads one.
 */
function binaryWithInterceptors(
  interceptors: Interceptor[],
  baseUrl: string,
  call: (req: UnaryRequest, timeoutMs: number | undefined, input: Uint8Array) => Promise<Uint8Array>,
): Upstream["unaryBinary"] {
  return async (method, signal, timeoutMs, header, input) => {
    let output: Uint8Array | undefined;
    const innermost = async (req: UnaryRequest): Promise<UnaryResponse> => {
      const bytes = await call(req, timeoutMs, input);
      output = bytes;
      return {
        stream: false,
        service: req.service,
        method: req.method,
        header: new Headers(),
        trailer: new Headers(),
        get message() {
          return fromBinary(method.output, bytes);
        },
      } as UnaryResponse;
    };
    const run = interceptors.reduceRight<(req: UnaryRequest) => Promise<UnaryResponse>>(
      (next, interceptor) => interceptor(next as never) as never,
      innermost,
    );
    await run({
      stream: false,
      service: method.parent,
      method,
      requestMethod: "POST",
      url: `${baseUrl.replace(/\/+$/, "")}/${method.parent.typeName}/${method.name}`,
      signal,
      header,
      contextValues: createContextValues(),
      get message() {
        return fromBinary(method.input, input);
      },
    } as UnaryRequest);
    return output!;
  };
}

/**
 * The upstream as a dependency of the gateway's readiness: SERVING for every
 * service the gateway routes to it, by its own grpc.health.v1 answer (so an
 * upstream whose database is down makes the gateway not ready too).
 */
export function upstreamDependency(upstream: Upstream, timeoutMs: number): Dependency {
  const health = createClient(Health, upstream.transport);
  return {
    name: upstream.name,
    async check() {
      for (const service of upstream.services) {
        const { status } = await health.check({ service: service.typeName }, { timeoutMs });
        if (status !== ServingStatus.SERVING) throw new Error(`${service.typeName} is ${ServingStatus[status]}`);
      }
    },
  };
}
