import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { BookingAdmission, ShedError } from "./admission.js";

function refusal(fn: () => unknown): ShedError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ShedError) return err;
    throw err;
  }
  throw new Error("admitted, expected a refusal");
}

describe("BookingAdmission", () => {
  it("bounds the calls in progress per event, and frees the slot when a call ends", () => {
    const admission = new BookingAdmission({ maxPerEvent: 2, maxInFlight: 100 });
    const a = admission.admit("e1");
    admission.admit("e1");
    const refused = refusal(() => admission.admit("e1"));
    expect(refused.code).toBe(Code.Unavailable);
    expect(refused.reason).toBe("event_queue_full");
    expect(refused.rawMessage).toMatch(/retry later with the same request_id/);
    admission.admit("e2"); // another event is not affected
    a();
    a(); // a second call of the same release is ignored
    expect(admission.inProgress("e1")).toBe(1);
    admission.admit("e1");
    expect(admission.inProgress()).toBe(3);
  });

  it("bounds the calls in progress in the process", () => {
    const admission = new BookingAdmission({ maxPerEvent: 10, maxInFlight: 2 });
    admission.admit("e1");
    admission.admit("e2");
    expect(refusal(() => admission.admit("e3")).reason).toBe("process_full");
  });

  it("refuses a call whose deadline is shorter than the expected wait, from what recent calls took", () => {
    let now = 0;
    const admission = new BookingAdmission({ maxPerEvent: 10, now: () => now });
    // Nothing measured yet: any deadline in the future is accepted.
    const first = admission.admit("e1", 1);
    now = 40;
    first(); // one call alone took 40 ms
    const ahead = admission.admit("e1", 1_000); // now one is in progress: a new one expects 2 × 40 ms
    expect(refusal(() => admission.admit("e1", now + 79)).reason).toBe("deadline_too_short");
    expect(admission.inProgress("e1")).toBe(1); // the refusal took no slot
    admission.admit("e1", now + 81);
    ahead();
    // With nothing in progress for the event the call is admitted whatever the estimate says:
    // it is served at once, and only served calls refresh the estimate (after an outage).
    admission.admit("e2", now + 1);
  });
});
