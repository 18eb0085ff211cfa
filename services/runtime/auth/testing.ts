// Tokens for tests: one fixed test secret, handed to every service under
// test through TEST_AUTH_ENV, and client interceptors that sign as a user.
import type { Interceptor } from "@connectrpc/connect";
import { ADMIN_ROLE, signToken } from "./tokens.js";

export const TEST_JWT_SECRET = "myevents-test-suite-secret-not-for-production";

/** Merge into a test's environment so the services verify tokens signed here. */
export const TEST_AUTH_ENV = { JWT_SECRET: TEST_JWT_SECRET } as const;

export interface TestTokenOptions {
  admin?: boolean;
  /** Lifetime; negative for an already expired token. */
  ttlSeconds?: number;
  secret?: string;
}

/** A token for `user` signed with the test secret. */
export function testToken(user: string, options: TestTokenOptions = {}): Promise<string> {
  return signToken(options.secret ?? TEST_JWT_SECRET, {
    subject: user,
    roles: options.admin ? [ADMIN_ROLE] : [],
    ttlSeconds: options.ttlSeconds ?? 3_600,
  });
}

const signed = new Map<string, Promise<string>>();

/** `authorization` header for `user`, for raw HTTP and grpc-js calls (hour-long tokens are signed once). */
export async function authHeader(user: string, options: TestTokenOptions = {}): Promise<{ authorization: string }> {
  let token: Promise<string>;
  if (options.ttlSeconds === undefined) {
    const key = JSON.stringify([user, Boolean(options.admin), options.secret ?? TEST_JWT_SECRET]);
    token = signed.get(key) ?? testToken(user, options);
    signed.set(key, token);
  } else {
    token = testToken(user, options);
  }
  return { authorization: `Bearer ${await token}` };
}

/** Client interceptor: sends this `authorization` value (e.g. a bad one) on every call. */
export function withAuthorization(authorization: string): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", authorization);
    return next(req);
  };
}

/**
 * Client interceptor: every call as `user` (signed once, on first use, so
 * the first call leaves a moment later; sign up front with `authHeader` and
 * `withAuthorization` where a test times its calls).
 */
export function asUser(user: string, options: TestTokenOptions = {}): Interceptor {
  let header: Promise<{ authorization: string }> | undefined;
  return (next) => async (req) => {
    if (!req.header.has("authorization")) req.header.set("authorization", (await (header ??= authHeader(user, options))).authorization);
    return next(req);
  };
}

/** Client interceptor: every call as an administrator. */
export const asAdmin = (user = "test-admin"): Interceptor => asUser(user, { admin: true });
