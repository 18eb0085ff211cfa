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

/** `authorization` header for `user`, for raw HTTP and grpc-js calls. */
export async function authHeader(user: string, options: TestTokenOptions = {}): Promise<{ authorization: string }> {
  return { authorization: `Bearer ${await testToken(user, options)}` };
}

/** Client interceptor: every call as `user` (signed once, on first use). */
export function asUser(user: string, options: TestTokenOptions = {}): Interceptor {
  let header: Promise<{ authorization: string }> | undefined;
  return (next) => async (req) => {
    if (!req.header.has("authorization")) req.header.set("authorization", (await (header ??= authHeader(user, options))).authorization);
    return next(req);
  };
}

/** Client interceptor: every call as an administrator. */
export const asAdmin = (user = "test-admin"): Interceptor => asUser(user, { admin: true });
