// The benchmarks' own mesh processes: (c) and (d) start services and the
// gateway as children, wait until they serve, and stop them at the end.
import { spawn, type ChildProcess } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { connect } from "amqplib";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/health/v1/health_pb.js";
import { localVhostUrl } from "../scripts/rabbitmq-vhost.js";
import { deadLetterQueueName, queueName } from "../services/messaging/amqp.js";
import { SERVICE_NODE_FLAGS } from "../services/runtime/node-flags.js";
import { ROOT, freePort } from "./lib.js";

/**
 * AMQP_URL, or the local broker's own vhost for the benchmarks: their
 * services use the standard queue names, so they get a broker (vhost) no
 * mesh uses. `dedicated`: the vhost is the benchmarks' own.
 */
export function benchBroker(): { url: string; note: string; dedicated: boolean } {
  if (process.env.AMQP_URL) return { url: process.env.AMQP_URL, note: "AMQP_URL", dedicated: false };
  const vhost = "myevents-bench";
  const url = localVhostUrl(vhost);
  if (url) return { url, note: `local RabbitMQ, vhost ${vhost}`, dedicated: true };
  return { url: "amqp://guest:guest@127.0.0.1:5672", note: "local RabbitMQ, default vhost", dedicated: false };
}

export interface BenchChild {
  name: string;
  process: ChildProcess;
  /** Its gRPC/HTTP address. */
  url: string;
}

/**
 * Starts `node <args>` (e.g. ["dist/services/events/main.js"], or
 * ["--import", "tsx", "services/events/main.ts"]), with the node options
 * every service is started with (services/runtime/node-flags.ts), on free ports with
 * LOG_LEVEL=info and waits until it is ready: SERVING over gRPC health, or
 * its admin port's /readyz answering 200 with `httpReady` (the gateway).
 * Its stdout (the JSON logs) goes to /dev/null; stderr stays visible.
 */
export async function startChild(name: string, args: string[], env: Record<string, string>, opts: { httpReady?: boolean } = {}): Promise<BenchChild> {
  const port = await freePort();
  const adminPort = await freePort();
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env, PORT: String(port), ADMIN_PORT: String(adminPort), HOST: "127.0.0.1", LOG_LEVEL: "info" };
  delete childEnv.NODE_OPTIONS;
  const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, ...args], { cwd: ROOT, env: childEnv, stdio: ["ignore", "ignore", "inherit"] });
  const url = `http://127.0.0.1:${port}`;
  const health = createClient(Health, createGrpcTransport({ baseUrl: url }));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode} while starting`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`${name} not ready after 60 s`);
    }
    const ready = opts.httpReady
      ? await fetch(`http://127.0.0.1:${adminPort}/readyz`, { signal: AbortSignal.timeout(1_000) }).then((r) => r.ok, () => false)
      : await health.check({ service: "" }, { timeoutMs: 1_000 }).then((r) => r.status === ServingStatus.SERVING, () => false);
    if (ready) break;
    await sleep(50);
  }
  return { name, process: child, url };
}

/** SIGTERM (the services drain), then SIGKILL if it has not exited within 15 s. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await Promise.race([exited, sleep(15_000).then(() => child.kill("SIGKILL"))]);
}

/**
 * Deletes the durable queues (and dead-letter queues) the services made on
 * the benchmarks' own vhost, so runs do not pile them up; a broker the
 * caller was given (AMQP_URL) is left as it is. Broadcast queues go with
 * their connections.
 */
export async function deleteServiceQueues(broker: { url: string; dedicated: boolean }, log: (line: string) => void): Promise<void> {
  if (!broker.dedicated) return;
  try {
    const connection = await connect(broker.url);
    const channel = await connection.createChannel();
    for (const name of ["events", "bookings"]) {
      await channel.deleteQueue(queueName(name));
      await channel.deleteQueue(deadLetterQueueName(name));
    }
    await connection.close();
  } catch (err) {
    log(`could not delete the benchmark's queues: ${(err as Error).message}`);
  }
}
