// Who is signed in: a token pasted by the user (printed by
// `npm run --silent token -- --user NAME [--admin]`), kept in
// sessionStorage so it dies with the tab. The browser never verifies the
// token - the services do; it only reads the claims to show who is signed in.

export interface Session {
  token: string;
  /** The token's `sub`: the user id the services see. */
  user: string;
  admin: boolean;
  /** Expiry from `exp`, if the token has one. */
  expires?: Date;
}

const KEY = "myevents.token";

/** The claims of a JWT as a session, or an error message for the sign-in form. */
export function parseToken(raw: string, now = new Date()): Session | string {
  const token = raw.trim();
  const parts = token.split(".");
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p)) || !parts[1]) {
    return "That is not a token: expected three base64url parts separated by dots (header.claims.signature).";
  }
  let claims: unknown;
  try {
    claims = JSON.parse(decodeBase64Url(parts[1]));
  } catch {
    return "The token's claims are not readable JSON.";
  }
  if (typeof claims !== "object" || claims === null) return "The token's claims are not an object.";
  const { sub, roles, exp } = claims as { sub?: unknown; roles?: unknown; exp?: unknown };
  if (typeof sub !== "string" || sub === "") return "The token names no user (its `sub` claim is missing).";
  const expires = typeof exp === "number" ? new Date(exp * 1000) : undefined;
  if (expires && expires <= now) return `The token expired at ${expires.toLocaleString()}; ask for a new one.`;
  const admin = Array.isArray(roles) && roles.includes("admin");
  return expires ? { token, user: sub, admin, expires } : { token, user: sub, admin };
}

function decodeBase64Url(part: string): string {
  const base64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

type Listener = (session: Session | undefined) => void;
const listeners = new Set<Listener>();

/** The stored session, if its token is still readable and unexpired. */
export function currentSession(): Session | undefined {
  const stored = storage()?.getItem(KEY);
  if (!stored) return undefined;
  const parsed = parseToken(stored);
  return typeof parsed === "string" ? undefined : parsed;
}

export function signIn(session: Session): void {
  storage()?.setItem(KEY, session.token);
  for (const listener of listeners) listener(session);
}

export function signOut(): void {
  storage()?.removeItem(KEY);
  for (const listener of listeners) listener(undefined);
}

export function onSessionChange(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function storage(): Storage | undefined {
  return typeof sessionStorage === "undefined" ? undefined : sessionStorage;
}
