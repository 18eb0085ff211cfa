import type { Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";

/**
 * Every protocol a service port speaks, as Connect transports, for
 * table-driven tests; `interceptors` e.g. `[asAdmin()]` for calls with a token.
 */
export function transports(baseUrl: string, interceptors: Interceptor[] = []): Record<string, Transport> {
  return {
    "gRPC (HTTP/2)": createGrpcTransport({ baseUrl, interceptors }),
    "Connect JSON (HTTP/1.1)": createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false, interceptors }),
    "Connect binary (HTTP/2)": createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true, interceptors }),
    "gRPC-Web (HTTP/1.1)": createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors }),
  };
}
