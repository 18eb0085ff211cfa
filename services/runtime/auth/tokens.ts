import { createSecretKey, type KeyObject } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { createRemoteJWKSet, errors, jwtVerify, SignJWT, type JWTVerifyGetKey, type JWTPayload } from "jose";
import type { Logger } from "../logger.js";
import type { AuthConfig } from "./config.js";
import { developmentSecret } from "./dev-secret.js";

/** Who a verified token speaks for. */
export interface Principal {
  /** The `sub` claim: the user id everywhere in the mesh. */
  subject: string;
  /** The `roles` claim; "admin" may create locations and events. */
  roles: readonly string[];
}

export interface TokenVerifier {
  /** Resolves the token's principal, or rejects with Unauthenticated saying why. */
  verify(token: string): Promise<Principal>;
  /** The principal of a token verified recently and still valid, without waiting; undefined otherwise. */
  known?(token: string): Principal | undefined;
}

export const ADMIN_ROLE = "admin";

/** HS256 for shared secrets; asymmetric keys from a JWKS. Never "none". */
const SECRET_ALGORITHMS = ["HS256"];
const JWKS_ALGORITHMS = ["RS256", "ES256"];

const MAX_SUBJECT_LENGTH = 256;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * The HS256 secret of this configuration (JWT_SECRET, or the development
 * secret, made on first use); undefined when keys come from a JWKS.
 */
export function signingSecret(config: AuthConfig, logger?: Logger): string | undefined {
  switch (config.keys.kind) {
    case "secret":
      return config.keys.secret;
    case "jwks":
      return undefined;
    case "development": {
      let made: { secret: string; created: boolean };
      try {
        made = developmentSecret(config.keys.file);
      } catch (err) {
        throw new Error(`cannot keep a development JWT secret in ${config.keys.file} (${(err as Error).message}); set JWT_SECRET or JWT_JWKS_URL`);
      }
      const { secret, created } = made;
      warnDevelopmentSecret(config.keys.file, created, logger);
      return secret;
    }
  }
}

let warned = false;
function warnDevelopmentSecret(file: string, created: boolean, logger: Logger | undefined): void {
  if (warned || !logger) return;
  warned = true; // once per process, not once per service in it
  logger.warn("JWT_SECRET and JWT_JWKS_URL are unset: tokens are verified with a development secret; never expose this deployment", {
    secret_file: file,
    created,
  });
}

/** Verifies bearer tokens as configured: signature, algorithm, expiry, issuer, audience, claims. */
export function createTokenVerifier(config: AuthConfig, logger?: Logger): TokenVerifier {
  const secret = signingSecret(config, logger);
  // A KeyObject made once: jose would import raw bytes again on every call.
  const key: KeyObject | JWTVerifyGetKey =
    secret !== undefined ? createSecretKey(Buffer.from(secret)) : createRemoteJWKSet(new URL((config.keys as { url: string }).url), { timeoutDuration: 2_000 });
  const options = {
    algorithms: secret !== undefined ? SECRET_ALGORITHMS : JWKS_ALGORITHMS,
    issuer: config.issuer,
    audience: config.audience,
    clockTolerance: config.clockToleranceSeconds,
    requiredClaims: ["sub", "exp"],
  };
  // A client sends the same token on every call until it expires:
  // remembering a good one saves a signature check per call. An entry never
  // outlives the token, and lasts at most a minute (a key dropped from the
  // JWKS stops counting within that).
  const verified = new Map<string, { principal: Principal; until: number }>();
  const known = (token: string, now = Date.now()) => {
    const entry = verified.get(token);
    return entry !== undefined && entry.until > now ? entry.principal : undefined;
  };
  return {
    known,
    async verify(token) {
      const now = Date.now();
      const principal = known(token, now);
      if (principal !== undefined) return principal;
      let payload: JWTPayload;
      try {
        // Two overloads (key or key function) that TypeScript cannot pick from a union.
        ({ payload } = typeof key === "function" ? await jwtVerify(token, key, options) : await jwtVerify(token, key, options));
      } catch (err) {
        throw rejection(err);
      }
      const checked = principalOf(payload);
      if (verified.size >= VERIFIED_CACHE_SIZE) verified.delete(verified.keys().next().value!);
      verified.set(token, { principal: checked, until: Math.min(payload.exp! * 1000, now + VERIFIED_CACHE_MS) });
      return checked;
    },
  };
}

const VERIFIED_CACHE_SIZE = 10_000;
const VERIFIED_CACHE_MS = 60_000;

function principalOf(payload: JWTPayload): Principal {
  const subject = payload.sub;
  if (typeof subject !== "string" || subject === "" || subject.length > MAX_SUBJECT_LENGTH || CONTROL.test(subject)) {
    throw unauthenticated(`token subject (sub) must be 1-${MAX_SUBJECT_LENGTH} printable characters`);
  }
  const roles = payload.roles ?? [];
  if (!Array.isArray(roles) || !roles.every((r) => typeof r === "string")) {
    throw unauthenticated("token roles claim must be an array of strings");
  }
  return { subject, roles };
}

/** Says what is wrong with a token, never echoing it. */
function rejection(err: unknown): ConnectError {
  if (err instanceof errors.JWTExpired) return unauthenticated("token expired");
  if (err instanceof errors.JWTClaimValidationFailed) return unauthenticated(`invalid token claim: ${err.message}`);
  if (err instanceof errors.JWSSignatureVerificationFailed) return unauthenticated("token signature is invalid");
  if (err instanceof errors.JOSEAlgNotAllowed) return unauthenticated("token algorithm is not accepted");
  if (err instanceof errors.JWKSNoMatchingKey) return unauthenticated("token is signed by an unknown key");
  if (err instanceof errors.JWKSTimeout || (err instanceof TypeError && /fetch/i.test(err.message))) {
    return new ConnectError("the token signing keys cannot be fetched, try again later", Code.Unavailable, undefined, undefined, err);
  }
  if (err instanceof errors.JWKSInvalid || err instanceof errors.JWKSMultipleMatchingKeys) {
    return new ConnectError("the token signing keys are unusable, try again later", Code.Unavailable, undefined, undefined, err);
  }
  if (err instanceof errors.JOSEError) return unauthenticated("token is malformed");
  return new ConnectError("token verification failed", Code.Internal, undefined, undefined, err);
}

export function unauthenticated(message: string): ConnectError {
  return new ConnectError(message, Code.Unauthenticated);
}

export interface TokenClaims {
  subject: string;
  roles?: readonly string[];
  ttlSeconds: number;
  issuer?: string;
  audience?: string;
}

/** Signs an HS256 token (the token script, the tests). */
export async function signToken(secret: string, claims: TokenClaims): Promise<string> {
  const jwt = new SignJWT({ roles: [...(claims.roles ?? [])] })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(claims.subject)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + claims.ttlSeconds);
  if (claims.issuer) jwt.setIssuer(claims.issuer);
  if (claims.audience) jwt.setAudience(claims.audience);
  return jwt.sign(createSecretKey(Buffer.from(secret)));
}
