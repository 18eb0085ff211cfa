import { fromBinary, type DescMethodUnary, type DescService, type Message } from "@bufbuild/protobuf";
import { createClient, createContextKey, createContextValues, type Interceptor, type Transport, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";
import { encodeBinary } from "../services/runtime/codec/binary-encoder.js";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/health/v1/health_pb.js";
import type { Dependency } from "../services/runtime/health.js";
import { encodeEnvelope } from "../services/runtime/grpc-wire.js";
import { sharedGetters } from "../services/runtime/shared-getters.js";
import { callSignalOf, type CallSignal } from "../services/runtime/call-signal.js";
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
  unary(method: DescMethodUnary, signal: CallSignal, timeoutMs: number | undefined, header: Headers, input: Message): Promise<Message>;
  /**
   * The same with the request already in protobuf binary (as a binary
   * caller sent it); resolves to the response's bytes as the service sent
   * them, so the gateway need not decode and encode them again.
   */
  unaryBinary(method: DescMethodUnary, signal: CallSignal, timeoutMs: number | undefined, header: Headers, input: Uint8Array): Promise<Uint8Array>;
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
    ...directUnary(interceptors, url, {
      unary: (req, signal, timeoutMs) => grpcUnary(sessions, basePath, req.method as DescMethodUnary, signal, timeoutMs, req.header, req.message),
      binary: (req, signal, timeoutMs, input) => grpcUnaryBinary(sessions, basePath, req.method as DescMethodUnary, signal, timeoutMs, req.header, encodeEnvelope(input)),
    }),
    close: () => sessions.abort(),
  };
}

// A direct call's lazy request and response members, shared by every call (shared-getters.ts): the
// signal only if an interceptor reads it (none of the gateway's do), a message from the binary
// caller's or the service's bytes only if somebody reads it.
const SIGNAL = Symbol("call signal");
const DECODED = Symbol("decoded message");
const BYTES = Symbol("message bytes");
type Lazy = { method: DescMethodUnary; [SIGNAL]: CallSignal; [DECODED]?: Message; [BYTES]?: Uint8Array };
const withRequestGetters = sharedGetters<Lazy>({
  signal() {
    return this[SIGNAL].signal;
  },
  message() {
    return (this[DECODED] ??= fromBinary(this.method.input, this[BYTES]!));
  },
});
const withMessageGetter = sharedGetters<Lazy>({
  message() {
    return (this[DECODED] ??= fromBinary(this.method.output, this[BYTES]!));
  },
});

/** What a direct call needs besides connect's request (which carries its cancellation): its timeout, and a binary caller's bytes. */
const timeoutKey = createContextKey<number | undefined>(undefined, { description: "the upstream call's timeout" });
const inputBytesKey = createContextKey<Uint8Array | undefined>(undefined, { description: "the request as a binary caller sent it" });

/**
 * The direct unary calls (decoded and binary) wrapped in the same client
 * interceptors as the transport (trace propagation, grpc_client_* metrics),
 * the first one outermost as in connect; they see connect's request and
 * response shapes. The chain is composed once per upstream. The interceptors
 * observe and never rewrite messages, so a binary call's bytes go out and
 * come back as they are; a message is decoded only if an interceptor reads one.
 */
function directUnary(
  interceptors: Interceptor[],
  baseUrl: string,
  send: {
    unary: (req: UnaryRequest, signal: CallSignal, timeoutMs: number | undefined) => Promise<Message>;
    binary: (req: UnaryRequest, signal: CallSignal, timeoutMs: number | undefined, input: Uint8Array) => Promise<Uint8Array>;
  },
): Pick<Upstream, "unary" | "unaryBinary"> {
  const response = (req: UnaryRequest, output: Message | undefined, bytes?: Uint8Array) => {
    const fields = { stream: false, service: req.service, method: req.method, header: new Headers(), trailer: new Headers(), bytes, [DECODED]: output, [BYTES]: bytes };
    return withMessageGetter(fields) as unknown as UnaryResponse & { bytes?: Uint8Array };
  };
  const innermost = async (req: UnaryRequest): Promise<UnaryResponse> => {
    const signal = callSignalOf(req, (req as UnaryRequest & Partial<Lazy>)[SIGNAL]);
    const timeoutMs = req.contextValues.get(timeoutKey);
    const input = req.contextValues.get(inputBytesKey);
    if (input === undefined) {
      return response(req, await send.unary(req, signal, timeoutMs));
    }
    return response(req, undefined, await send.binary(req, signal, timeoutMs, input));
  };
  const run = interceptors.reduceRight<(req: UnaryRequest) => Promise<UnaryResponse>>((next, interceptor) => interceptor(next as never) as never, innermost);
  const root = baseUrl.replace(/\/+$/, "");
  const call = (method: DescMethodUnary, signal: CallSignal, timeoutMs: number | undefined, header: Headers, message: Message | undefined, bytes?: Uint8Array) => {
    const contextValues = createContextValues().set(timeoutKey, timeoutMs);
    if (bytes) contextValues.set(inputBytesKey, bytes);
    const fields = {
      stream: false,
      service: method.parent,
      method,
      requestMethod: "POST",
      url: `${root}/${method.parent.typeName}/${method.name}`,
      header,
      contextValues,
      [SIGNAL]: signal,
      [DECODED]: message,
      [BYTES]: bytes,
    };
    return run(withRequestGetters(fields) as unknown as UnaryRequest);
  };
  return {
    unary: async (method, signal, timeoutMs, header, input) => (await call(method, signal, timeoutMs, header, input)).message,
    unaryBinary: async (method, signal, timeoutMs, header, input) => {
      const res = (await call(method, signal, timeoutMs, header, undefined, input)) as UnaryResponse & { bytes?: Uint8Array };
      // An interceptor may answer with a response of its own (no bytes): encode it.
      return res.bytes ?? encodeBinary(method.output, res.message);
    },
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
