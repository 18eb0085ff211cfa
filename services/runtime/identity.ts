import { createContextKey } from "@connectrpc/connect";

/**
 * The calling user's id, as handlers read it: `ctx.values.get(callerKey)`.
 * Set only from a verified bearer token (the `sub` claim) by the auth
 * interceptor (`auth/interceptor.ts`); "anonymous" on read-only calls made
 * without a token. No request header is trusted for it.
 */
export const callerKey = createContextKey<string>("anonymous", { description: "calling user id" });

/** The caller's roles (the token's `roles` claim); empty when anonymous. */
export const rolesKey = createContextKey<readonly string[]>([], { description: "calling user roles" });
