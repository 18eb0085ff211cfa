import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";
import { Counter, type Registry } from "prom-client";
import type { EnvReader } from "../services/runtime/config.js";
import { bearerToken, AUTHORIZATION_HEADER } from "../services/runtime/auth/interceptor.js";
import type { TokenVerifier } from "../services/runtime/auth/tokens.js";
import { protocolOf } from "../services/runtime/interceptors/outcome.js";

export interface RateLimitConfig {
  /** Sustained requests per second per client. */
  perSecond: number;
  /** Requests a client may send at once after being idle. */
  burst: number;
}

/** RATE_LIMIT_PER_SECOND (0 turns limiting off) and RATE_LIMIT_BURST. */
export function readRateLimitConfig(env: EnvReader): RateLimitConfig | undefined {
  const perSecond = env.int("RATE_LIMIT_PER_SECOND", 50, { min: 0, max: 1_000_000 });
  const burst = env.int("RATE_LIMIT_BURST", 100, { min: 1, max: 1_000_000 });
  return perSecond === 0 ? undefined : { perSecond, burst };
}

/**
 * One token bucket per key: each holds up to `burst` tokens, refilled at
 * `perSecond`; a request takes one. Idle (full) buckets are forgotten when
 * there are many, so memory stays bounded whatever the number of clients.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly config: RateLimitConfig,
    private readonly maxKeys = 100_000,
  ) {}

  /** Takes a token for `key`: 0 when allowed, else the seconds until one is available. */
  take(key: string, now = Date.now()): number {
    const { perSecond, burst } = this.config;
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= this.maxKeys) this.forgetIdle(now);
      bucket = { tokens: burst, at: now };
      this.buckets.set(key, bucket);
    } else {
      bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perSecond);
      bucket.at = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / perSecond));
  }

  get size(): number {
    return this.buckets.size;
  }

  private forgetIdle(now: number): void {
    const { perSecond, burst } = this.config;
    for (const [key, b] of this.buckets) if (b.tokens + ((now - b.at) / 1000) * perSecond >= burst) this.buckets.delete(key);
    // Still full of busy clients: drop the longest-known ones.
    for (const key of this.buckets.keys()) {
      if (this.buckets.size < this.maxKeys) break;
      this.buckets.delete(key);
    }
  }
}

/** The peer address of the request, set by the gateway for the RPC path. */
export const clientAddressKey = createContextKey<string>("unknown", { description: "client address" });

/**
 * The gateway's per-client limit. A client is the subject of a valid bearer
 * token, else its address: a missing or bad token cannot buy a fresh bucket.
 */
export class ClientRateLimit {
  private readonly buckets: TokenBuckets;
  private readonly limited: Counter<"protocol">;

  constructor(
    config: RateLimitConfig,
    private readonly verifier: TokenVerifier,
    registry: Registry,
  ) {
    this.buckets = new TokenBuckets(config);
    this.limited = new Counter({
      name: "gateway_rate_limited_total",
      help: "Requests refused by the per-client rate limit (ResourceExhausted / HTTP 429), by protocol.",
      labelNames: ["protocol"],
      registers: [registry],
    });
  }

  /** 0 when the request may pass, else the seconds to wait (counted as limited under `protocol`). */
  async admit(authorization: string | null, address: string, protocol: string): Promise<number> {
    const wait = this.buckets.take(await this.clientKey(authorization, address));
    if (wait > 0) this.limited.inc({ protocol });
    return wait;
  }

  private async clientKey(authorization: string | null, address: string): Promise<string> {
    if (authorization !== null) {
      try {
        return `user:${(await this.verifier.verify(bearerToken(authorization))).subject}`;
      } catch {
        // The service refuses the token; until then the address pays.
      }
    }
    return `address:${address}`;
  }

  /** For RPCs (Connect, gRPC, gRPC-Web): ResourceExhausted, in each protocol's own form. */
  interceptor(): Interceptor {
    return (next) => async (req) => {
      const wait = await this.admit(req.header.get(AUTHORIZATION_HEADER), req.contextValues.get(clientAddressKey), protocolOf(req));
      if (wait > 0) throw tooManyRequests(wait);
      return next(req);
    };
  }
}

export function tooManyRequests(retryAfterSeconds: number): ConnectError {
  return new ConnectError(
    `rate limit exceeded for this client, retry in ${retryAfterSeconds}s`,
    Code.ResourceExhausted,
    { "retry-after": String(retryAfterSeconds) },
  );
}
