/**
 * Evaluates in JavaScript the small subset of MongoDB query filters the
 * repository's conditional writes use: per field, a value (equality; for an
 * array field, "contains") or `$in`, `$ne` (for an array: "contains no"),
 * `$gt`, `$gte`, `$lt`, `$lte` on numbers and dates. Anything else throws,
 * so a filter the repository adds later cannot be half-checked silently.
 *
 * Why: FerretDB 1.24 (SQLite) pushes a filter down to SQLite only when it is
 * exactly `{ _id: <value> }`; `{ _id, state, ... }` reads and decodes the
 * whole collection, so each conditional write cost O(all bookings). On
 * FerretDB the repository therefore reads by `_id`, checks the condition
 * here and writes by `_id`, under its per-document lock (which FerretDB
 * needs anyway, see outbox/lock.ts).
 */
export function matchesFilter(doc: Record<string, unknown>, filter: Record<string, unknown>): boolean {
  return Object.entries(filter).every(([field, condition]) => matchesField(doc[field], condition, field));
}

type Scalar = string | number | boolean | Date | null | undefined;

function matchesField(value: unknown, condition: unknown, field: string): boolean {
  if (!isOperatorObject(condition)) return equalsOrContains(value, condition as Scalar);
  return Object.entries(condition).every(([op, arg]) => {
    switch (op) {
      case "$in":
        if (!Array.isArray(arg)) throw new Error(`filter on ${field}: $in needs an array`);
        return arg.some((a) => equalsOrContains(value, a as Scalar));
      case "$ne":
        return !equalsOrContains(value, arg as Scalar);
      case "$gt":
      case "$gte":
      case "$lt":
      case "$lte":
        return compareTo(value, arg as Scalar, op);
      default:
        throw new Error(`filter on ${field}: operator ${op} is not supported here`);
    }
  });
}

function isOperatorObject(x: unknown): x is Record<string, unknown> {
  if (typeof x !== "object" || x === null || x instanceof Date || Array.isArray(x)) return false;
  const keys = Object.keys(x);
  return keys.length > 0 && keys.every((k) => k.startsWith("$"));
}

function same(a: unknown, b: Scalar): boolean {
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  if (typeof b === "object" && b !== null && !(b instanceof Date)) throw new Error("filter: only scalar values are supported here");
  // A missing field equals null, as in MongoDB.
  if (b === null) return a === null || a === undefined;
  return a === b;
}

function equalsOrContains(value: unknown, wanted: Scalar): boolean {
  return Array.isArray(value) ? value.some((v) => same(v, wanted)) || same(value, wanted) : same(value, wanted);
}

function compareTo(value: unknown, bound: Scalar, op: "$gt" | "$gte" | "$lt" | "$lte"): boolean {
  const num = (x: unknown) => (x instanceof Date ? x.getTime() : typeof x === "number" ? x : undefined);
  const [a, b] = [num(value), num(bound)];
  // Different types never match a range in MongoDB.
  if (a === undefined || b === undefined || (value instanceof Date) !== (bound instanceof Date)) return false;
  return op === "$gt" ? a > b : op === "$gte" ? a >= b : op === "$lt" ? a < b : a <= b;
}
