import { randomBytes } from "node:crypto";
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import path from "node:path";

/**
 * The development signing secret: made once (32 random bytes) and kept in
 * `file` (mode 0600) so that every local process (services, gateway, the
 * token script) signs and verifies with the same key. `created` says
 * whether this call made it.
 */
export function developmentSecret(file: string): { secret: string; created: boolean } {
  try {
    return { secret: readSecret(file), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const secret = randomBytes(32).toString("base64url");
  // Written aside, then linked into place: the link is atomic and fails if
  // the file exists, so processes starting together agree on one secret and
  // none reads a half-written file.
  const draft = `${file}.${process.pid}.${randomBytes(4).toString("hex")}`;
  writeFileSync(draft, `${secret}\n`, { mode: 0o600, flag: "wx" });
  try {
    linkSync(draft, file);
    return { secret, created: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    return { secret: readSecret(file), created: false };
  } finally {
    unlinkSync(draft);
  }
}

function readSecret(file: string): string {
  const secret = readFileSync(file, "utf8").trim();
  if (secret.length < 32) throw new Error(`${file} holds no usable secret; delete it to make a new one`);
  return secret;
}
