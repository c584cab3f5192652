/**
 * A token-bucket rate limiter keyed by client (a token or an address), with bounded memory.
 *
 * Each key has a bucket of `burst` tokens that refills at `ratePerSec`; a request takes one token, or is
 * refused with the time until one is back. A bucket untouched for as long as a refill from empty takes
 * (`burst / ratePerSec`) is full again, which is what a missing bucket means, so it is dropped. Buckets
 * are kept in least-recently-used order (a Map re-inserted on use), so those idle ones are found at the
 * front in O(1) per request, with no timer. At most `maxKeys` buckets are kept: a new key beyond that
 * evicts the least recently used bucket, even if it is not full (that client starts over with a full
 * bucket: with very many distinct clients the limit is per-client only approximately, but memory stays
 * bounded).
 */

import type { Server } from "node:net";
import { Counter, type Registry } from "prom-client";

export interface RateLimiterOptions {
  /** Tokens added per second (> 0). */
  ratePerSec: number;
  /** Bucket size: requests allowed at once (>= 1). */
  burst: number;
  /** Most buckets kept; default 10 000. */
  maxKeys?: number;
  /** A monotonic clock in milliseconds; performance.now by default. */
  now?: () => number;
}

export type Decision = { allowed: true } | { allowed: false; retryAfterMs: number };

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date (ms, the injected clock). */
  at: number;
}

export class RateLimiter {
  readonly ratePerSec: number;
  readonly burst: number;
  readonly maxKeys: number;
  private readonly now: () => number;
  /** Least recently used first. */
  private readonly buckets = new Map<string, Bucket>();
  /** ms after which an untouched bucket is full again. */
  private readonly refillMs: number;

  constructor(options: RateLimiterOptions) {
    if (!(options.ratePerSec > 0)) throw new RangeError(`ratePerSec must be > 0, got ${options.ratePerSec}`);
    if (!(options.burst >= 1)) throw new RangeError(`burst must be >= 1, got ${options.burst}`);
    const maxKeys = options.maxKeys ?? 10_000;
    if (!(Number.isInteger(maxKeys) && maxKeys >= 1)) throw new RangeError(`maxKeys must be an integer >= 1, got ${maxKeys}`);
    this.ratePerSec = options.ratePerSec;
    this.burst = options.burst;
    this.maxKeys = maxKeys;
    this.now = options.now ?? (() => performance.now());
    this.refillMs = (this.burst / this.ratePerSec) * 1000;
  }

  /** Takes one token from `key`'s bucket, or says how long until one is available. */
  take(key: string): Decision {
    const now = this.now();
    this.evictIdle(now);
    let bucket = this.buckets.get(key);
    if (bucket) {
      this.buckets.delete(key); // re-inserted below: most recently used goes last
      bucket.tokens = Math.min(this.burst, bucket.tokens + (Math.max(0, now - bucket.at) * this.ratePerSec) / 1000);
      bucket.at = now;
    } else {
      if (this.buckets.size >= this.maxKeys) this.evictOldest();
      bucket = { tokens: this.burst, at: now };
    }
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { allowed: true };
    }
    return { allowed: false, retryAfterMs: Math.ceil(((1 - bucket.tokens) / this.ratePerSec) * 1000) };
  }

  /** Buckets currently kept (for tests and metrics). */
  get size(): number {
    return this.buckets.size;
  }

  /** Drops buckets at the front (least recently used) that have been idle long enough to be full. */
  private evictIdle(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (now - bucket.at < this.refillMs) return;
      this.buckets.delete(key);
    }
  }

  private evictOldest(): void {
    const oldest = this.buckets.keys().next();
    if (!oldest.done) this.buckets.delete(oldest.value);
  }
}

/** The limiter for TABLEMQ_RATE_LIMIT_PER_SEC and _BURST (burst 0 = one second's worth), or undefined when off. */
export function rateLimiterFor(
  config: { rateLimitPerSec: number; rateLimitBurst: number },
  options: Partial<RateLimiterOptions> = {},
): RateLimiter | undefined {
  if (config.rateLimitPerSec <= 0) return undefined;
  return new RateLimiter({
    ratePerSec: config.rateLimitPerSec,
    burst: config.rateLimitBurst > 0 ? config.rateLimitBurst : Math.max(1, config.rateLimitPerSec),
    ...options,
  });
}

/**
 * Caps open connections (HTTP keep-alive and WebSocket alike) with the server's `maxConnections`: a
 * connection beyond it is closed at once by Node, before a byte is read (the client sees a reset), and
 * counted in `tablemq_connections_dropped_total`. 0 = no limit.
 */
export function limitConnections(server: Server, max: number, registry: Registry): void {
  if (max <= 0) return;
  const dropped = new Counter({
    name: "tablemq_connections_dropped_total",
    help: "Connections closed at once: TABLEMQ_MAX_CONNECTIONS reached",
    registers: [registry],
  });
  server.maxConnections = max;
  server.on("drop", () => dropped.inc());
}
