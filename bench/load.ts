// The load client, in its own process: unary GetEvent calls at a fixed
// concurrency. Driven over IPC: {type:"run", calls, concurrency} →
// {type:"done", ...LoadResult}. PROTOCOL picks the client:
//   grpc          one @grpc/grpc-js client, one HTTP/2 connection (scenario a)
//   connect-json  Connect protocol with JSON over HTTP/1.1, as a browser sends it (scenario b)
//   grpc-web      gRPC-Web over HTTP/1.1, as a browser sends it (scenario b)
// The two browser protocols come from bench/http1-client.ts (a minimal
// keep-alive client, one connection per concurrent call), or with
// CLIENT=connect-node from connect-node's own client (it costs more CPU per
// call than the gateway and the service together: bench/README.md, finding 10).
import { performance } from "node:perf_hooks";
import * as grpc from "@grpc/grpc-js";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { EventService } from "../gen/myevents/v1/event_service_pb.js";
import { http1GetEventCaller } from "./http1-client.js";
import { loadEventService, mutationMetadata } from "./lib.js";

export interface LoadResult {
  calls: number;
  errors: number;
  seconds: number;
  callsPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
}

type Protocol = "grpc" | "connect-json" | "grpc-web";
const protocol = (process.env.PROTOCOL ?? "grpc") as Protocol;
const target = `127.0.0.1:${process.env.TARGET_PORT}`;

/** GetEvent through the chosen client; resolves to the returned event's id. */
function getEventCaller(): { getEvent: (id: string) => Promise<string | undefined>; close: () => void } {
  if (protocol === "grpc") {
    const client = new (loadEventService())(target, grpc.credentials.createInsecure()) as grpc.Client & Record<string, Function>;
    return {
      getEvent: (id) => new Promise((resolve, reject) => client.getEvent!({ id }, (err: Error | null, res: any) => (err ? reject(err) : resolve(res.event?.id)))),
      close: () => client.close(),
    };
  }
  if (process.env.CLIENT !== "connect-node") return http1GetEventCaller(Number(process.env.TARGET_PORT), protocol);
  const baseUrl = `http://${target}`;
  const transport =
    protocol === "grpc-web" ? createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }) : createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false });
  const client = createClient(EventService, transport);
  return { getEvent: async (id) => (await client.getEvent({ id })).event?.id, close: () => {} };
}

/** Creates a location and an event over gRPC (the project's store starts empty); returns the event id. */
async function seed(): Promise<string> {
  const client = new (loadEventService())(target, grpc.credentials.createInsecure()) as grpc.Client & Record<string, Function>;
  const metadata = await mutationMetadata();
  const call = (method: string, req: object): Promise<any> =>
    new Promise((resolve, reject) => client[method]!(req, metadata, (err: Error | null, res: any) => (err ? reject(err) : resolve(res))));
  const { location } = await call("createLocation", { location: { name: "Bench Arena", address: "Main St 1", country: "de", halls: [{ name: "A", capacity: 100 }] } });
  const start = Math.floor(Date.now() / 1000) + 86_400;
  const { event } = await call("createEvent", {
    event: { name: "Bench concert", locationId: location.id, hall: "A", startTime: { seconds: String(start), nanos: 0 }, endTime: { seconds: String(start + 7200), nanos: 0 } },
  });
  client.close();
  return event.id;
}

const eventId = process.env.SEED === "1" ? await seed() : (process.env.EVENT_ID || "00000000-0000-4000-8000-000000000000");
const caller = getEventCaller();

function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function run(calls: number, concurrency: number): Promise<LoadResult> {
  const lat = new Float64Array(calls);
  let next = 0;
  let errors = 0;
  const worker = async () => {
    while (next < calls) {
      const i = next++;
      const t = performance.now();
      try {
        if ((await caller.getEvent(eventId)) !== eventId) errors++;
      } catch {
        errors++;
      }
      lat[i] = performance.now() - t;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  lat.sort();
  return { calls, errors, seconds, callsPerSec: calls / seconds, p50Ms: quantile(lat, 0.5), p90Ms: quantile(lat, 0.9), p99Ms: quantile(lat, 0.99) };
}

process.on("message", (msg: { type: string; calls: number; concurrency: number }) => {
  if (msg.type === "run") {
    run(msg.calls, msg.concurrency).then((r) => process.send!({ type: "done", ...r }));
  } else if (msg.type === "exit") {
    caller.close();
    process.exit(0);
  }
});
process.send!({ type: "ready", eventId });
