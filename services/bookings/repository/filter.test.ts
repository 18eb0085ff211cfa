import { describe, expect, it } from "vitest";
import { matchesFilter } from "./filter.js";

describe("matchesFilter (the repository's conditions, evaluated for FerretDB)", () => {
  const doc = { _id: "b1", state: "PENDING", opToken: "t", seats: 3, markers: ["reserve:x", "release:y"], at: new Date(1000) };

  it("equality, and for arrays: contains", () => {
    expect(matchesFilter(doc, { _id: "b1", state: "PENDING", opToken: "t" })).toBe(true);
    expect(matchesFilter(doc, { state: "CONFIRMED" })).toBe(false);
    expect(matchesFilter(doc, { markers: "reserve:x" })).toBe(true);
    expect(matchesFilter(doc, { markers: "reserve:z" })).toBe(false);
    expect(matchesFilter(doc, { missing: null })).toBe(true);
    expect(matchesFilter(doc, { at: new Date(1000) })).toBe(true);
  });

  it("$in, $ne (for arrays: contains none), and ranges on numbers and dates", () => {
    expect(matchesFilter(doc, { state: { $in: ["PENDING", "CANCELLING"] } })).toBe(true);
    expect(matchesFilter(doc, { state: { $in: ["CONFIRMED"] } })).toBe(false);
    expect(matchesFilter(doc, { markers: { $ne: "reserve:z" } })).toBe(true);
    expect(matchesFilter(doc, { markers: { $ne: "reserve:x" } })).toBe(false);
    expect(matchesFilter(doc, { seats: { $gte: 3 } })).toBe(true);
    expect(matchesFilter(doc, { seats: { $gt: 3 } })).toBe(false);
    expect(matchesFilter(doc, { seats: { $lte: 3, $gte: 1 } })).toBe(true);
    expect(matchesFilter(doc, { seats: { $lt: 3 } })).toBe(false);
    expect(matchesFilter(doc, { at: { $lt: new Date(2000) } })).toBe(true);
    expect(matchesFilter(doc, { state: { $gte: 1 } })).toBe(false); // another type never matches a range
    expect(matchesFilter({ markers: undefined }, { markers: { $ne: "m" } })).toBe(true);
  });

  it("throws on what it does not implement instead of guessing", () => {
    expect(() => matchesFilter(doc, { state: { $regex: "P" } })).toThrow(/not supported/);
    expect(() => matchesFilter(doc, { $or: [{ state: "PENDING" }] })).toThrow();
  });
});
