// The load client, in its own process: one @grpc/grpc-js client (one HTTP/2
// connection), unary GetEvent calls at a fixed concurrency. Driven over IPC:
// {type:"run", calls, concurrency} → {type:"done", ...LoadResult}.
import { performance } from "node:perf_hooks";
import * as grpc from "@grpc/grpc-js";
import { ADMIN_ROLE, signToken } from "../services/runtime/auth/tokens.js";
import { loadEventService } from "./lib.js";

export interface LoadResult {
  calls: number;
  errors: number;
  seconds: number;
  callsPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
}

type Unary = (req: object, cb: (err: grpc.ServiceError | null, res?: any) => void) => void;

const Client = loadEventService();
const client = new Client(`127.0.0.1:${process.env.TARGET_PORT}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, Unary>;
type UnaryWithMetadata = (req: object, metadata: grpc.Metadata, cb: (err: grpc.ServiceError | null, res?: any) => void) => void;
const call = (method: string, req: object, metadata = new grpc.Metadata()): Promise<any> =>
  new Promise((resolve, reject) =>
    (client[method] as unknown as UnaryWithMetadata).call(client, req, metadata, (err, res) => (err ? reject(err) : resolve(res))),
  );

let eventId = "00000000-0000-4000-8000-000000000000";
if (process.env.SEED === "1") {
  // The project's store starts empty: create the event that GetEvent reads (as an admin).
  const admin = new grpc.Metadata();
  admin.set("authorization", `Bearer ${await signToken(process.env.JWT_SECRET!, { subject: "bench", roles: [ADMIN_ROLE], ttlSeconds: 600 })}`);
  const { location } = await call("createLocation", { location: { name: "Bench Arena", address: "Main St 1", country: "de", halls: [{ name: "A", capacity: 100 }] } }, admin);
  const start = Math.floor(Date.now() / 1000) + 86_400;
  const { event } = await call("createEvent", {
    event: { name: "Bench concert", locationId: location.id, hall: "A", startTime: { seconds: String(start), nanos: 0 }, endTime: { seconds: String(start + 7200), nanos: 0 } },
  }, admin);
  eventId = event.id;
}

function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function run(calls: number, concurrency: number): Promise<LoadResult> {
  const lat = new Float64Array(calls);
  let next = 0;
  let errors = 0;
  const req = { id: eventId };
  const worker = async () => {
    while (next < calls) {
      const i = next++;
      const t = performance.now();
      try {
        const res = await call("getEvent", req);
        if (res.event?.id !== eventId) errors++;
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
    client.close();
    process.exit(0);
  }
});
process.send!({ type: "ready", eventId });
