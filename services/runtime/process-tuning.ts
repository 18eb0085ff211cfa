import { boundHeapGrowth } from "./heap.js";
import { useCheapRequestBind } from "./http2-request-bind.js";

/**
 * The run-time settings every service process and the gateway make at
 * start (startService, startGateway), beside the command-line options of
 * node-flags.ts. Each is process-wide and idempotent, so the all-in-one
 * `npm start`, which starts several, makes them more than once harmlessly.
 */
export function tuneServiceProcess(): void {
  boundHeapGrowth();
  useCheapRequestBind();
}
