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
    const a = admission.admit("e1", 1); // nothing measured, nothing ahead: admitted
    const b = admission.admit("e1", 1_000);
    now = 40;
    b(); // took 40 ms with one call ahead: 20 ms per place in the queue
    // One call (a) still ahead: a new one expects 2 × 20 ms, for its event and for the process.
    expect(refusal(() => admission.admit("e1", now + 39)).reason).toBe("deadline_too_short");
    expect(refusal(() => admission.admit("e2", now + 39)).reason).toBe("deadline_too_short");
    expect(admission.inProgress("e1")).toBe(1); // refusals take no place
    const c = admission.admit("e1", now + 41);
    a();
    c();
    // Queues drained: estimates are forgotten, and a call with nothing ahead is admitted
    // whatever its deadline (it is served at once; only served calls refresh the estimates).
    expect(admission.inProgress()).toBe(0);
    admission.admit("e1", now + 1);
  });
});
