import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { callerKey, rolesKey } from "../identity.js";
import { accessOf } from "./policy.js";
import { runWithCallerCredentials } from "./propagation.js";
import { ADMIN_ROLE, unauthenticated, type TokenVerifier } from "./tokens.js";

export const AUTHORIZATION_HEADER = "authorization";

/**
 * Authentication and authorization for every service, in one place: reads
 * `authorization: Bearer <JWT>`, verifies it, applies the access policy
 * (`policy.ts`) and puts the subject in `callerKey` and the roles in
 * `rolesKey`. Only `req.header`, `req.method` and `req.contextValues` are
 * used, so any server path that runs connect interceptors runs this.
 */
export function authInterceptor(verifier: TokenVerifier): Interceptor {
  return (next) => async (req) => {
    const access = accessOf(req.method);
    if (access === "open") return next(req);
    const authorization = req.header.get(AUTHORIZATION_HEADER);
    if (authorization === null) {
      if (access === "public") return next(req);
      throw unauthenticated(`${req.method.name} needs a bearer token (authorization: Bearer <JWT>)`);
    }
    const principal = await verifier.verify(bearerToken(authorization));
    if (access === "admin" && !principal.roles.includes(ADMIN_ROLE)) {
      throw new ConnectError(`${req.method.name} needs the ${ADMIN_ROLE} role`, Code.PermissionDenied);
    }
    req.contextValues.set(callerKey, principal.subject);
    req.contextValues.set(rolesKey, principal.roles);
    return runWithCallerCredentials(authorization, () => next(req));
  };
}

/** The token of an `authorization` header value, or Unauthenticated. */
export function bearerToken(authorization: string): string {
  const match = /^Bearer +([^\s]+) *$/i.exec(authorization);
  if (!match) throw unauthenticated("authorization header must be \"Bearer <token>\"");
  return match[1]!;
}
