// Prints a bearer token for the locally running mesh:
//   npm run --silent token -- --user NAME [--admin] [--ttl 1h]
// Signed with JWT_SECRET, or with the development secret in .data/ that
// `npm start` uses when JWT_SECRET is unset (made here if it is missing).
import { parseArgs } from "node:util";
import { ConfigError, EnvReader } from "../services/runtime/config.js";
import { readAuthConfig } from "../services/runtime/auth/config.js";
import { ADMIN_ROLE, signingSecret, signToken } from "../services/runtime/auth/tokens.js";

const USAGE = "usage: npm run --silent token -- --user NAME [--admin] [--ttl 1h]   (ttl: 90s, 15m, 1h, 7d; at most 30d)";
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3_600, d: 86_400 };
const MAX_TTL_SECONDS = 30 * 86_400;

function fail(message: string, exitCode = 64): never {
  process.stderr.write(`${message}\n`);
  process.exit(exitCode);
}

/** "90s", "15m", "1h", "7d" or plain seconds. */
export function parseTtl(text: string): number | undefined {
  const match = /^(\d+)([smhd]?)$/.exec(text.trim());
  if (!match) return undefined;
  const seconds = Number(match[1]) * UNIT_SECONDS[match[2] || "s"]!;
  return seconds >= 1 && seconds <= MAX_TTL_SECONDS ? seconds : undefined;
}

async function main(): Promise<void> {
  let values: { user?: string; admin?: boolean; ttl?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: { user: { type: "string" }, admin: { type: "boolean" }, ttl: { type: "string" }, help: { type: "boolean", short: "h" } },
      strict: true,
    }));
  } catch (err) {
    fail(`${(err as Error).message}\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const user = values.user?.trim();
  if (!user) fail(`--user is required\n${USAGE}`);
  const ttlSeconds = parseTtl(values.ttl ?? "1h");
  if (ttlSeconds === undefined) fail(`--ttl ${JSON.stringify(values.ttl)} is not a duration\n${USAGE}`);

  const env = new EnvReader();
  const config = readAuthConfig(env);
  try {
    env.done();
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message, 78);
    throw err;
  }
  const secret = signingSecret(config);
  if (secret === undefined) {
    fail("JWT_JWKS_URL is set: tokens come from the identity provider that owns those keys, not from this script", 78);
  }
  const token = await signToken(secret, {
    subject: user,
    roles: values.admin ? [ADMIN_ROLE] : [],
    ttlSeconds,
    issuer: config.issuer,
    audience: config.audience,
  });
  process.stdout.write(`${token}\n`);
}

await main();
