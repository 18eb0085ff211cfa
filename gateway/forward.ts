import type { DescMethodServerStreaming, DescMethodUnary, DescService, Message } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { callerGone } from "../services/runtime/errors.js";
import type { Logger } from "../services/runtime/logger.js";
import { fromAbortSignal, type CallSignal } from "../services/runtime/call-signal.js";
import { cleanError } from "./errors.js";
import type { Upstream } from "./upstreams.js";

/**
 * Request headers that travel on to the services: the bearer token (the
 * services verify it) and W3C trace context. Nothing else crosses:
 * hop-by-hop and protocol headers belong to each leg.
 */
export const FORWARDED_HEADERS = ["authorization", "traceparent", "tracestate"] as const;

/** What the forwarder needs to know about the incoming call, whatever its protocol. */
export interface CallInfo {
  header: Headers;
  /** Aborts when the caller goes away or its deadline passes. */
  signal: CallSignal;
  /** When the caller's deadline passes (ms since the epoch), if it set one. */
  deadline: number | undefined;
}

export interface ForwarderOptions {
  /** Upper bound for any deadline sent upstream; also the deadline of unary calls that set none. */
  maxDeadlineMs: number;
  logger: Logger;
  /** Aborted at shutdown: forwarded streams end with its reason so clients reconnect elsewhere. */
  streamsStop: AbortSignal;
}

/**
 * Calls the service behind the gateway for each RPC it receives: same
 * method, same message, the headers that matter, the caller's deadline
 * (capped) and cancellation; the upstream's answer, or its error's code,
 * message and details, go back unchanged.
 */
export class Forwarder {
  private readonly upstreamOf = new Map<string, Upstream>();

  constructor(
    /** Every service the gateway answers for; one without an upstream answers Unimplemented. */
    readonly services: readonly DescService[],
    upstreams: readonly Upstream[],
    private readonly options: ForwarderOptions,
  ) {
    for (const upstream of upstreams) for (const service of upstream.services) this.upstreamOf.set(service.typeName, upstream);
  }

  async unary(method: DescMethodUnary, input: Message, call: CallInfo): Promise<Message> {
    const upstream = this.upstream(method.parent);
    // Unary calls always carry a deadline upstream, so none waits forever.
    const timeoutMs = Math.min(remainingMs(call) ?? Infinity, this.options.maxDeadlineMs);
    try {
      return await upstream.unary(method, call.signal, timeoutMs, forwardedHeaders(call.header), input);
    } catch (err) {
      throw this.failure(err, upstream, call.signal, call.deadline);
    }
  }

  /**
   * The same with the request and the response in protobuf binary: what a
   * binary caller (gRPC-Web, Connect binary) sent goes on as it is, and the
   * service's answer comes back undecoded.
   */
  async unaryBinary(method: DescMethodUnary, input: Uint8Array, call: CallInfo): Promise<Uint8Array> {
    const upstream = this.upstream(method.parent);
    const timeoutMs = Math.min(remainingMs(call) ?? Infinity, this.options.maxDeadlineMs);
    try {
      return await upstream.unaryBinary(method, call.signal, timeoutMs, forwardedHeaders(call.header), input);
    } catch (err) {
      throw this.failure(err, upstream, call.signal, call.deadline);
    }
  }

  async *serverStream(method: DescMethodServerStreaming, input: Message, call: CallInfo): AsyncGenerator<Message> {
    const upstream = this.upstream(method.parent);
    // A subscription may rightly last for hours: only a deadline the caller
    // set (capped) applies; the stream ends when the caller goes away.
    const left = remainingMs(call);
    const timeoutMs = left === undefined ? undefined : Math.min(left, this.options.maxDeadlineMs);
    const signal = AbortSignal.any([call.signal.signal, this.options.streamsStop]);
    let messages: AsyncIterable<Message>;
    try {
      const res = await upstream.transport.stream(method, signal, timeoutMs, forwardedHeaders(call.header), single(input));
      messages = res.message;
    } catch (err) {
      throw this.failure(err, upstream, signal, call.deadline);
    }
    try {
      // Returning early (the caller left) returns the upstream iterator too,
      // which cancels the upstream call.
      yield* messages;
    } catch (err) {
      throw this.failure(err, upstream, signal, call.deadline);
    }
  }

  /** Registers every method of every service in a Connect router (Connect, gRPC, gRPC-Web). */
  register(router: ConnectRouter): void {
    for (const service of this.services) {
      const impl: Record<string, unknown> = {};
      for (const method of service.methods) {
        if (method.methodKind === "unary") {
          const unary = method as DescMethodUnary;
          impl[method.localName] = (req: Message, ctx: HandlerContext) => this.unary(unary, req, callInfo(ctx));
        } else if (method.methodKind === "server_streaming") {
          const streaming = method as DescMethodServerStreaming;
          impl[method.localName] = (req: Message, ctx: HandlerContext) => this.serverStream(streaming, req, callInfo(ctx));
        }
        // Client and bidi streaming are not in the contracts; the router
        // answers Unimplemented for methods left out.
      }
      router.service(service, impl as Partial<ServiceImpl<DescService>>);
    }
  }

  private upstream(service: DescService): Upstream {
    const upstream = this.upstreamOf.get(service.typeName);
    if (!upstream) throw new ConnectError(`${service.typeName} is not available through this gateway`, Code.Unimplemented);
    return upstream;
  }

  private failure(err: unknown, upstream: Upstream, signal: { readonly aborted: boolean; readonly reason: unknown }, deadline: number | undefined): ConnectError {
    // The caller's deadline passed, the caller left, or the gateway stops:
    // say so, rather than whatever the aborted upstream call reported.
    if (signal.aborted) {
      const reason = ConnectError.from(signal.reason);
      if (reason.code === Code.DeadlineExceeded || signal.reason === this.options.streamsStop.reason) return reason;
      // Anything else is connect-node telling that the caller reset its
      // stream (HTTP/2: a code from the RST_STREAM, INTERNAL_ERROR becoming
      // Internal) or closed its connection (HTTP/1.1): not a fault here.
      return callerGone(deadline);
    }
    const error = ConnectError.from(err);
    // No grpc-status from the upstream: the call never reached the service
    // or got no answer from it (refused connection, a stream reset because
    // the process died: connect-node reports RST_STREAM CANCEL as Canceled
    // and INTERNAL_ERROR as Internal). Retryable, and the address stays in
    // the log, not in the answer. (Debug only: /readyz and the health
    // monitor's warning already report the outage once, not per call.)
    if (NO_ANSWER_CODES.has(error.code) && !error.metadata.has("grpc-status")) {
      this.options.logger.debug("upstream unreachable", { upstream: upstream.name, url: upstream.url, error: error.message });
      return new ConnectError(`the ${upstream.name} service is unavailable, try again later`, Code.Unavailable, undefined, undefined, error);
    }
    return cleanError(error);
  }
}

/**
 * Codes of an upstream call that ended without a gRPC status. The caller
 * did not cancel (that is checked first), so Canceled here means the
 * upstream went away mid-call (found by the fault suite: a SIGKILLed
 * BookingService showed clients Canceled, which they do not retry).
 */
const NO_ANSWER_CODES: ReadonlySet<Code> = new Set([Code.Unavailable, Code.Canceled, Code.Internal, Code.Unknown]);

export function callInfo(ctx: HandlerContext): CallInfo {
  return { header: ctx.requestHeader, signal: fromAbortSignal(ctx.signal), deadline: deadlineIn(ctx.timeoutMs()) };
}

/** The deadline `timeoutMs` from now (ms since the epoch), if there is one. */
export function deadlineIn(timeoutMs: number | undefined): number | undefined {
  return timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
}

/**
 * What is left of the caller's deadline, if it set one. A deadline that has
 * already passed (a slow request body on the fast path, which keeps no timer
 * of its own) fails here rather than racing a 1 ms deadline upstream.
 */
function remainingMs(call: CallInfo): number | undefined {
  if (call.deadline === undefined) return undefined;
  const left = call.deadline - Date.now();
  if (left <= 0) throw new ConnectError("the operation timed out", Code.DeadlineExceeded);
  return left;
}

function forwardedHeaders(from: Headers): Headers {
  const headers = new Headers();
  for (const name of FORWARDED_HEADERS) {
    const value = from.get(name);
    if (value !== null) headers.set(name, value);
  }
  return headers;
}

async function* single<T>(value: T): AsyncIterable<T> {
  yield value;
}
