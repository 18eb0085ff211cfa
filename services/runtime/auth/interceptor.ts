import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor, type StreamRequest, type StreamResponse, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";
import { callerKey, rolesKey } from "../identity.js";
import { accessOf, type Access } from "./policy.js";
import { runWithCallerCredentials } from "./propagation.js";
import { ADMIN_ROLE, unauthenticated, type Principal, type TokenVerifier } from "./tokens.js";

export const AUTHORIZATION_HEADER = "authorization";

/**
 * Authentication and authorization for every service, in one place: reads
 * `authorization: Bearer <JWT>`, verifies it, applies the access policy
 * (`policy.ts`) and puts the subject in `callerKey` and the roles in
 * `rolesKey`. Only `req.header`, `req.method` and `req.contextValues` are
 * used, so any server path that runs connect interceptors runs this.
 */
export function authInterceptor(verifier: TokenVerifier, policy: (method: DescMethod) => Access = accessOf): Interceptor {
  // The policy is fixed per method: looked up once, not on every call.
  const accessByMethod = new Map<DescMethod, Access>();
  // Calls without credentials (probes, anonymous reads) pass straight
  // through, adding no promise of their own.
  return (next) => (req) => {
    let access = accessByMethod.get(req.method);
    if (access === undefined) accessByMethod.set(req.method, (access = policy(req.method)));
    if (access === "open") return next(req);
    const authorization = req.header.get(AUTHORIZATION_HEADER);
    if (authorization === null) {
      if (access === "public") return next(req);
      return Promise.reject(unauthenticated(`${req.method.name} needs a bearer token (authorization: Bearer <JWT>)`));
    }
    return authenticated(verifier, access, authorization, req, next);
  };
}

function authenticated<R extends UnaryRequest | StreamRequest>(
  verifier: TokenVerifier,
  access: Access,
  authorization: string,
  req: R,
  next: (req: R) => Promise<UnaryResponse | StreamResponse>,
): Promise<UnaryResponse | StreamResponse> {
  let token: string;
  try {
    token = bearerToken(authorization);
  } catch (err) {
    return Promise.reject(err);
  }
  // A token verified a moment ago (the usual case: a client sends the same
  // one on every call) needs no signature check and no extra promise.
  const known = verifier.known?.(token);
  if (known !== undefined) return admitted(known, access, authorization, req, next);
  return verifier.verify(token).then((principal) => admitted(principal, access, authorization, req, next));
}

function admitted<R extends UnaryRequest | StreamRequest>(
  principal: Principal,
  access: Access,
  authorization: string,
  req: R,
  next: (req: R) => Promise<UnaryResponse | StreamResponse>,
): Promise<UnaryResponse | StreamResponse> {
  if (access === "admin" && !principal.roles.includes(ADMIN_ROLE)) {
    return Promise.reject(new ConnectError(`${req.method.name} needs the ${ADMIN_ROLE} role`, Code.PermissionDenied));
  }
  req.contextValues.set(callerKey, principal.subject);
  req.contextValues.set(rolesKey, principal.roles);
  return runWithCallerCredentials(authorization, () => next(req));
}

/** The token of an `authorization` header value, or Unauthenticated. */
export function bearerToken(authorization: string): string {
  const match = /^Bearer +([^\s]+) *$/i.exec(authorization);
  if (!match) throw unauthenticated("authorization header must be \"Bearer <token>\"");
  return match[1]!;
}
