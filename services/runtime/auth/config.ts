import { join } from "node:path";
import type { EnvReader } from "../config.js";
import { REPO_ROOT } from "../paths.js";

/**
 * Where the keys that verify bearer tokens come from:
 * - `secret`: HS256 with a shared secret (`JWT_SECRET`);
 * - `jwks`: RS256/ES256 with public keys fetched from `JWT_JWKS_URL`;
 * - `development`: neither is set; a random secret kept in `.data/` and
 *   shared by every local process (never for production).
 */
export type AuthKeySource = { kind: "secret"; secret: string } | { kind: "jwks"; url: string } | { kind: "development"; file: string };

export interface AuthConfig {
  keys: AuthKeySource;
  /** Required `iss` claim, when set. */
  issuer?: string;
  /** Required `aud` claim, when set. */
  audience?: string;
  /** Leeway for `exp` and `nbf`, for clocks that differ a little. */
  clockToleranceSeconds: number;
}

/** Where the development secret lives: `.data/dev-jwt-secret` in the repository (git-ignored). */
export const DEV_SECRET_FILE = join(REPO_ROOT, ".data", "dev-jwt-secret");

/** HS256 keys shorter than this are guessable offline from any token. */
export const MIN_SECRET_BYTES = 32;

export function readAuthConfig(env: EnvReader): AuthConfig {
  const secret = env.optionalString("JWT_SECRET");
  const jwksUrl = env.optionalUrl("JWT_JWKS_URL", ["https:", "http:"]);
  let keys: AuthKeySource;
  if (secret !== undefined && jwksUrl !== undefined) {
    env.problem("JWT_SECRET", "and JWT_JWKS_URL are both set; set one (HS256 secret or RS256/ES256 key set)");
    keys = { kind: "secret", secret };
  } else if (secret !== undefined) {
    if (Buffer.byteLength(secret) < MIN_SECRET_BYTES) env.problem("JWT_SECRET", `must be at least ${MIN_SECRET_BYTES} bytes long`);
    keys = { kind: "secret", secret };
  } else if (jwksUrl !== undefined) {
    keys = { kind: "jwks", url: jwksUrl };
  } else {
    keys = { kind: "development", file: DEV_SECRET_FILE };
  }
  return {
    keys,
    issuer: env.optionalString("JWT_ISSUER"),
    audience: env.optionalString("JWT_AUDIENCE"),
    clockToleranceSeconds: env.int("JWT_CLOCK_TOLERANCE_SECONDS", 30, { min: 0, max: 300 }),
  };
}
