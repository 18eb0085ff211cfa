import { expect } from "vitest";
import { eventually } from "./eventually.js";

/** The access log line ("rpc") of the call to `method` ("/pkg.Service/Method") among captured JSON lines, once it is written. */
export function eventuallyLoggedRpc(logs: readonly string[], method: string): Promise<Record<string, unknown>> {
  return eventually(() => {
    const found = logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === "rpc" && l.method === method);
    expect(found).toBeDefined();
    return found!;
  });
}
