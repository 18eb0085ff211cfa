import { execFileSync } from "node:child_process";
import { connect } from "amqplib";
import { declareExchanges } from "../services/messaging/amqp.js";

/**
 * The local broker's URL for a vhost of its own (made, and opened to
 * guest, with rabbitmqctl), so that what runs there (tests, benchmarks)
 * never meets a mesh on the same broker; undefined where rabbitmqctl is
 * not available (the caller falls back to the default vhost).
 */
export function localVhostUrl(vhost: string): string | undefined {
  try {
    execFileSync("rabbitmqctl", ["add_vhost", vhost], { stdio: "ignore" });
  } catch {
    // exists already, or no rabbitmqctl: the permissions call below tells
  }
  try {
    execFileSync("rabbitmqctl", ["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], { stdio: "ignore" });
    return `amqp://guest:guest@127.0.0.1:5672/${vhost}`;
  } catch {
    return undefined;
  }
}

/**
 * Declares the exchanges (idempotent), so that code binding its own queues
 * never depends on a bus having connected first: on a fresh vhost that race
 * fails with 404 NOT_FOUND.
 */
export async function declareTopology(url: string): Promise<void> {
  const connection = await connect(url);
  try {
    await declareExchanges(await connection.createChannel());
  } finally {
    await connection.close();
  }
}
