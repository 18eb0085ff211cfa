import { readAuthConfig, type AuthConfig } from "./auth/config.js";

/**
 * Configuration from the environment (twelve-factor), validated up front:
 * every problem is collected and reported together, each naming the
 * variable, so a bad deployment fails at start with a clear message
 * instead of misbehaving later.
 */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

/** Reads typed values from an environment, remembering what was wrong. */
export class EnvReader {
  private readonly problems: string[] = [];

  constructor(private readonly env: Env = process.env) {}

  string(name: string, fallback: string): string {
    const raw = this.raw(name);
    return raw ?? fallback;
  }

  optionalString(name: string): string | undefined {
    return this.raw(name);
  }

  int(name: string, fallback: number, range: { min: number; max: number }): number {
    const raw = this.raw(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!/^-?\d+$/.test(raw) || !Number.isSafeInteger(value)) {
      return this.fail(name, `must be a whole number, got ${JSON.stringify(raw)}`, fallback);
    }
    if (value < range.min || value > range.max) {
      return this.fail(name, `must be between ${range.min} and ${range.max}, got ${value}`, fallback);
    }
    return value;
  }

  port(name: string, fallback: number): number {
    return this.int(name, fallback, { min: 0, max: 65535 });
  }

  oneOf<T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
    const raw = this.raw(name);
    if (raw === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(raw)) {
      return this.fail(name, `must be one of ${allowed.join(", ")}, got ${JSON.stringify(raw)}`, fallback);
    }
    return raw as T;
  }

  /** An optional URL whose scheme must be one of `protocols` (e.g. "mongodb:"). */
  optionalUrl(name: string, protocols: readonly string[]): string | undefined {
    const raw = this.raw(name);
    if (raw === undefined) return undefined;
    let protocol: string;
    try {
      protocol = new URL(raw).protocol;
    } catch {
      return this.fail(name, `must be a URL, got ${JSON.stringify(redact(raw))}`, undefined);
    }
    if (!protocols.includes(protocol)) {
      return this.fail(name, `must start with ${protocols.map((p) => `${p}//`).join(" or ")}, got ${JSON.stringify(redact(raw))}`, undefined);
    }
    return raw;
  }

  /** Records a problem found by a caller's own check of `name`. */
  problem(name: string, message: string): void {
    this.problems.push(`${name} ${message}`);
  }

  /** Throws one ConfigError listing every problem seen so far. */
  done(): void {
    if (this.problems.length > 0) throw new ConfigError(this.problems);
  }

  private raw(name: string): string | undefined {
    const value = this.env[name];
    return value === undefined || value.trim() === "" ? undefined : value.trim();
  }

  private fail<T>(name: string, message: string, fallback: T): T {
    this.problems.push(`${name} ${message}`);
    return fallback;
  }
}

/** Hides credentials in a URL before it is printed. */
export function redact(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, "//***@");
}

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Settings every service process shares (see README's configuration table). */
export interface RuntimeConfig {
  host: string;
  port: number;
  adminPort: number;
  logLevel: LogLevel;
  /** Largest accepted request message, in bytes (ResourceExhausted above). */
  maxRequestBytes: number;
  /** Longest deadline a caller may ask for (InvalidArgument above). */
  maxDeadlineMs: number;
  /** How long in-flight RPCs may take to finish after SIGTERM. */
  shutdownTimeoutMs: number;
  /** How often dependencies (the database) are probed for health. */
  healthCheckIntervalMs: number;
  /** How bearer tokens are verified (JWT_SECRET, JWT_JWKS_URL, ...). */
  auth: AuthConfig;
}

/**
 * `portPrefix` names the port variables when several services share one
 * process (`npm start`): "EVENTS_" reads EVENTS_PORT and EVENTS_ADMIN_PORT.
 */
export function readRuntimeConfig(env: EnvReader, defaults: { port: number; adminPort: number }, portPrefix = ""): RuntimeConfig {
  return {
    host: env.string("HOST", "0.0.0.0"),
    port: env.port(`${portPrefix}PORT`, defaults.port),
    adminPort: env.port(`${portPrefix}ADMIN_PORT`, defaults.adminPort),
    logLevel: env.oneOf("LOG_LEVEL", "info", LOG_LEVELS),
    maxRequestBytes: env.int("MAX_REQUEST_BYTES", 4 * 1024 * 1024, { min: 1024, max: 64 * 1024 * 1024 }),
    maxDeadlineMs: env.int("MAX_DEADLINE_MS", 60_000, { min: 100, max: 3_600_000 }),
    shutdownTimeoutMs: env.int("SHUTDOWN_TIMEOUT_MS", 4_000, { min: 0, max: 300_000 }),
    healthCheckIntervalMs: env.int("HEALTH_CHECK_INTERVAL_MS", 2_000, { min: 100, max: 60_000 }),
    auth: readAuthConfig(env),
  };
}
