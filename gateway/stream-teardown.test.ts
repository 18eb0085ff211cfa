// A Subscribe stream through the gateway torn down from either end, with the
// real NotificationService behind it (embedded defaults, real sockets): the
// caller leaving must free the service's subscriber, and the service going
// away must end the caller's stream with a retryable error, never a hang or
// a clean end that a client would take for "no more notifications".
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { createConnectTransport as createWebConnectTransport, createGrpcWebTransport as createWebGrpcWebTransport } from "@connectrpc/connect-web";
import { NotificationService } from "../gen/myevents/v1/notification_service_pb.js";
import { startTcpProxy } from "../services/messaging/tcp-proxy.js";
import type { RunningService } from "../services/runtime/server.js";
import { eventually, failure, startServices, startTestGateway } from "./test-support.js";

/** What a browser speaks: Connect JSON and gRPC-Web, from connect-node over HTTP/1.1 and from connect-web over fetch. */
const BROWSER_PROTOCOLS: Record<string, (baseUrl: string) => Transport> = {
  "Connect JSON (HTTP/1.1)": (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "1.1" }),
  "gRPC-Web (HTTP/1.1)": (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
  "connect-web, Connect JSON (fetch)": (baseUrl) => createWebConnectTransport({ baseUrl }),
  "connect-web, gRPC-Web (fetch)": (baseUrl) => createWebGrpcWebTransport({ baseUrl }),
};

/** The NotificationService's own count of its open Subscribe streams (its hub's subscribers). */
async function openStreams(notifications: RunningService): Promise<number> {
  const metric = await notifications.metrics.getSingleMetricAsString("notification_streams_open");
  return Number(/^notification_streams_open(?:\{[^}]*\})? (\S+)$/m.exec(metric)?.[1] ?? NaN);
}

/**
 * Subscribes through the gateway and resolves once the first message (the
 * heartbeat the service sends once it registered the subscriber) arrived;
 * `ended` settles with how the stream ended.
 */
async function subscribed(transport: Transport, signal?: AbortSignal) {
  let first!: () => void;
  const arrived = new Promise<void>((resolve) => (first = resolve));
  const ended = (async () => {
    for await (const _ of createClient(NotificationService, transport).subscribe({ eventIds: ["e1"] }, { signal })) first();
  })();
  await Promise.race([arrived, ended]);
  return { ended };
}

describe("Subscribe through the gateway, the caller leaving", () => {
  let services: Awaited<ReturnType<typeof startServices>>;
  let gw: Awaited<ReturnType<typeof startTestGateway>>;
  beforeAll(async () => {
    services = await startServices();
    gw = await startTestGateway({ EVENTS_URL: "none", BOOKINGS_URL: "none", NOTIFICATIONS_URL: services.notificationsUrl });
  });
  afterAll(async () => {
    await gw?.gateway.shutdown();
    await services?.stop();
  });

  for (const [name, transport] of Object.entries(BROWSER_PROTOCOLS)) {
    it(`${name}: the service sees its subscriber leave`, async () => {
      const abort = new AbortController();
      const stream = await subscribed(transport(gw.url), abort.signal);
      expect(await openStreams(services.notifications)).toBe(1);
      abort.abort();
      expect((await failure(stream.ended)).code).toBe(Code.Canceled);
      await eventually(async () => expect(await openStreams(services.notifications)).toBe(0));
    });
  }
});

describe("Subscribe through the gateway, the service going away", () => {
  for (const [name, transport] of Object.entries(BROWSER_PROTOCOLS)) {
    it(`${name}: its connection lost (the process died) ends the caller's stream with Unavailable`, async () => {
      const services = await startServices();
      const proxy = await startTcpProxy("127.0.0.1", services.notifications.port);
      const { gateway, url } = await startTestGateway({ EVENTS_URL: "none", BOOKINGS_URL: "none", NOTIFICATIONS_URL: `http://127.0.0.1:${proxy.port}` });
      try {
        const stream = await subscribed(transport(url));
        proxy.cut();
        const began = Date.now();
        const error = await failure(stream.ended);
        expect({ code: Code[error.code], fast: Date.now() - began < 5_000 }).toEqual({ code: Code[Code.Unavailable], fast: true });
        expect(error.rawMessage).not.toContain("127.0.0.1");
      } finally {
        await gateway.shutdown();
        await proxy.close();
        await services.stop();
      }
    });

    it(`${name}: its shutdown ends the caller's stream with the service's Unavailable`, async () => {
      const services = await startServices();
      const { gateway, url } = await startTestGateway({ EVENTS_URL: "none", BOOKINGS_URL: "none", NOTIFICATIONS_URL: services.notificationsUrl });
      try {
        const stream = await subscribed(transport(url));
        const stopping = services.notifications.shutdown();
        const error = await failure(stream.ended);
        expect({ code: Code[error.code], message: error.rawMessage }).toEqual({
          code: Code[Code.Unavailable],
          message: "the notification service is shutting down; subscribe again",
        });
        await stopping;
      } finally {
        await gateway.shutdown();
        await services.stop();
      }
    });
  }
});
