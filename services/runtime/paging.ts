import { createHash } from "node:crypto";
import { Violations } from "./errors.js";

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 100;

/**
 * page_size as in Google's API guidelines (AIP-158): 0 means the default,
 * larger than the maximum is lowered to it (negative is rejected by the
 * contract's rule before this runs).
 */
export function pageSize(requested: number): number {
  if (requested <= 0) return DEFAULT_PAGE_SIZE;
  return Math.min(requested, MAX_PAGE_SIZE);
}

/**
 * Page tokens are opaque to clients: base64url of the position to resume
 * after plus a fingerprint of the filters, so a token can't be reused with
 * different filters (which would silently skip or repeat items).
 */
export function encodePageToken(cursor: unknown, filters: unknown): string {
  return Buffer.from(JSON.stringify({ c: cursor, f: fingerprint(filters) })).toString("base64url");
}

/**
 * The cursor inside a token, or undefined for an empty token. `isCursor`
 * checks its shape: a token is client input and may be forged.
 */
export function decodePageToken<C>(
  token: string,
  filters: unknown,
  isCursor: (value: unknown) => value is C,
  violations: Violations,
): C | undefined {
  if (token === "") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    parsed = undefined;
  }
  const body = parsed as { c?: unknown; f?: unknown } | undefined;
  if (typeof body !== "object" || body === null || !isCursor(body.c)) {
    violations.add("page_token", "is not a token from a previous response");
    return undefined;
  }
  if (body.f !== fingerprint(filters)) {
    violations.add("page_token", "was issued for different filters; send the same filters as the first request");
    return undefined;
  }
  return body.c;
}

function fingerprint(filters: unknown): string {
  return createHash("sha256").update(JSON.stringify(filters ?? null)).digest("base64url").slice(0, 16);
}
