import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";

/** The calling user's id, as handlers read it: `ctx.values.get(callerKey)`. */
export const callerKey = createContextKey<string>("anonymous", { description: "calling user id" });

/** Header carrying the user id until tokens replace it (the security work). */
export const USER_HEADER = "x-user-id";

const USER_ID = /^[A-Za-z0-9._@-]{1,128}$/;

/**
 * Puts the caller's identity into the call context, in one place, so that
 * handlers never parse headers. Today the source is the `x-user-id` header
 * (default "anonymous", for development); verified tokens will replace it
 * without touching handlers.
 */
export function identityInterceptor(): Interceptor {
  return (next) => (req) => {
    const user = req.header.get(USER_HEADER);
    if (user !== null) {
      if (!USER_ID.test(user)) {
        throw new ConnectError(`${USER_HEADER} must be 1-128 characters of A-Z a-z 0-9 . _ @ -`, Code.Unauthenticated);
      }
      req.contextValues.set(callerKey, user);
    }
    return next(req);
  };
}
