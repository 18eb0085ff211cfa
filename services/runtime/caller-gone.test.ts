// A client that gives up on a service (its deadline passed, or it aborted):
// what the service's access log line and grpc_server_handled_total record
// must be what the client saw (DeadlineExceeded or Canceled), never Internal
// or OK. connect-node clients reset HTTP/2 streams with INTERNAL_ERROR when
// they give up, which connect-node's handler turns into an Internal abort
// reason; a handler that ignores its signal answers OK to nobody.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { Health } from "../../gen/health/v1/health_pb.js";
import { EventService } from "../../gen/myevents/v1/event_service_pb.js";
import { NotificationService } from "../../gen/myevents/v1/notification_service_pb.js";
import { eventually, sleep } from "../../test/support/eventually.js";
import { EnvReader, readRuntimeConfig } from "./config.js";
import { TEST_AUTH_ENV } from "./auth/testing.js";
import { createLogger } from "./logger.js";
import { serve, startService, type RunningService } from "./server.js";
import { eventuallyLoggedRpc } from "../../test/support/logs.js";

const GET_EVENT = "/myevents.v1.EventService/GetEvent";
const SUBSCRIBE = "/myevents.v1.NotificationService/Subscribe";

const LOCAL = { HOST: "127.0.0.1", PORT: "0", ADMIN_PORT: "0", HEALTH_CHECK_INTERVAL_MS: "100", ...TEST_AUTH_ENV };

/** The error a call fails with; fails the test if it succeeds. */
async function failure(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail, it succeeded");
}

const untilAborted = (signal: AbortSignal) => new Promise<never>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));

const logs: string[] = [];
let service: RunningService;
beforeAll(async () => {
  // "slow" waits until the call's signal aborts; "deaf" ignores it and answers after 600 ms.
  service = await startService({
    name: "slow",
    config: readRuntimeConfig(new EnvReader(LOCAL), { port: 0, adminPort: 0 }),
    logger: createLogger("debug", {}, (line) => logs.push(line)),
    services: [
      serve(EventService, {
        async getEvent(req, ctx) {
          if (req.id === "slow") await untilAborted(ctx.signal);
          else if (req.id === "deaf") await sleep(600);
          else if (req.id === "missing") throw new ConnectError("no such event", Code.NotFound);
          return { event: { id: req.id, name: "late" } };
        },
      }),
      serve(NotificationService, {
        async *subscribe(req, ctx) {
          if (req.eventIds[0] === "slow") await untilAborted(ctx.signal);
          else if (req.eventIds[0] === "deaf") await sleep(600);
          else if (req.eventIds[0] === "missing") throw new ConnectError("no such event", Code.NotFound);
        },
      }),
    ],
  });
});
afterAll(() => service?.shutdown());

/** grpc_server_handled_total of one method, by code, from the admin endpoint. */
async function handled(path: string): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${service.adminPort}/metrics`)).text();
  const [svc, method] = path.slice(1).split("/");
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = /^grpc_server_handled_total\{[^}]*grpc_service="([^"]+)",grpc_method="(\w+)",grpc_code="(\w+)"[^}]*\} (\d+)/.exec(line);
    if (m && m[1] === svc && m[2] === method) out[m[3]!] = (out[m[3]!] ?? 0) + Number(m[4]);
  }
  return out;
}

/** The call's log line and what grpc_server_handled_total added, once both are in. */
async function recorded(path: string, before: Record<string, number>) {
  const line = await eventuallyLoggedRpc(logs, path);
  const counted = await eventually(async () => {
    const after = await handled(path);
    const d: Record<string, number> = {};
    for (const [k, v] of Object.entries(after)) if (v !== (before[k] ?? 0)) d[k] = v - (before[k] ?? 0);
    expect(Object.values(d).reduce((a, b) => a + b, 0)).toBe(1);
    return d;
  });
  return { logged: line.code, counted };
}

const expected = (code: string) => ({ logged: code, counted: { [code]: 1 } });

const CLIENTS: Record<string, (baseUrl: string) => Transport> = {
  // Unary calls take the gRPC fast path (grpc-unary.ts), streams connect-node.
  "gRPC (HTTP/2)": (baseUrl) => createGrpcTransport({ baseUrl }),
  "Connect (HTTP/2)": (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "2" }),
  "Connect (HTTP/1.1)": (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "1.1" }),
  "gRPC-Web (HTTP/2)": (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "2" }),
  "gRPC-Web (HTTP/1.1)": (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
};

type Kind = "unary" | "server stream" | "Health/Watch";
const KINDS: Kind[] = ["unary", "server stream", "Health/Watch"];
const pathOf = (kind: Kind) => (kind === "unary" ? GET_EVENT : kind === "server stream" ? SUBSCRIBE : "/grpc.health.v1.Health/Watch");

function call(kind: Kind, t: Transport, id: string, options: { timeoutMs?: number; signal?: AbortSignal }): Promise<unknown> {
  if (kind === "unary") return createClient(EventService, t).getEvent({ id }, options);
  const stream =
    kind === "server stream"
      ? createClient(NotificationService, t).subscribe({ eventIds: [id] }, options)
      : createClient(Health, t).watch({ service: "" }, options); // sends SERVING, then waits for changes or the signal
  return (async () => {
    for await (const _ of stream);
  })();
}

describe("a client that waits for the answer", () => {
  // Unchanged by the rule above: well-behaved calls record their own code.
  for (const [name, transport] of Object.entries(CLIENTS)) {
    for (const kind of ["unary", "server stream"] as const) {
      for (const [id, code] of [["fast", "OK"], ["missing", "NotFound"]] as const) {
        it(`${name} ${kind} answered ${code} within its deadline is logged and counted as ${code}`, async () => {
          const path = pathOf(kind);
          const before = await handled(path);
          logs.length = 0;
          const got = await call(kind, transport(`http://127.0.0.1:${service.port}`), id, { timeoutMs: 5_000 }).then(
            () => "OK",
            (err: unknown) => Code[ConnectError.from(err).code],
          );
          expect(got).toBe(code);
          expect(await recorded(path, before)).toEqual(expected(code));
        });
      }
    }
  }
});

describe("a client that gives up on a service", () => {
  for (const [name, transport] of Object.entries(CLIENTS)) {
    for (const kind of KINDS) {
      // Health/Watch always waits on the signal: no "deaf" variant.
      for (const id of kind === "Health/Watch" ? ["slow"] : ["slow", "deaf"]) {
        const handler = id === "slow" ? "handler waits for the signal" : "handler ignores the signal";
        const path = pathOf(kind);

        it(`${name} ${kind}, ${handler}: the client's deadline passing is logged and counted as DeadlineExceeded`, async () => {
          const before = await handled(path);
          logs.length = 0;
          const got = (await failure(call(kind, transport(`http://127.0.0.1:${service.port}`), id, { timeoutMs: 300 }))).code;
          const rec = await recorded(path, before);
          expect(Code[got]).toBe("DeadlineExceeded");
          expect(rec).toEqual(expected("DeadlineExceeded"));
        });

        it(`${name} ${kind}, ${handler}: a client aborting long before its deadline is logged and counted as Canceled`, async () => {
          const before = await handled(path);
          logs.length = 0;
          const abort = new AbortController();
          setTimeout(() => abort.abort(), 150);
          const got = (await failure(call(kind, transport(`http://127.0.0.1:${service.port}`), id, { timeoutMs: 5_000, signal: abort.signal }))).code;
          const rec = await recorded(path, before);
          expect(Code[got]).toBe("Canceled");
          expect(rec).toEqual(expected("Canceled"));
        });

        it(`${name} ${kind}, ${handler}: a client with no deadline aborting is logged and counted as Canceled`, async () => {
          const before = await handled(path);
          logs.length = 0;
          const abort = new AbortController();
          setTimeout(() => abort.abort(), 150);
          const got = (await failure(call(kind, transport(`http://127.0.0.1:${service.port}`), id, { signal: abort.signal }))).code;
          const rec = await recorded(path, before);
          expect(Code[got]).toBe("Canceled");
          expect(rec).toEqual(expected("Canceled"));
        });
      }
    }
  }
});
