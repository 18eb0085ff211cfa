import { execFileSync } from "node:child_process";

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
