import { describe, expect, it } from "vitest";
import { RateLimiter, rateLimiterFor } from "../../../src/server/rate-limit.js";

/** A limiter on a clock the test moves. */
function limiter(ratePerSec: number, burst: number, maxKeys?: number) {
  let now = 1_000;
  const l = new RateLimiter({ ratePerSec, burst, now: () => now, ...(maxKeys ? { maxKeys } : {}) });
  return { l, advance: (ms: number) => (now += ms) };
}

const takeN = (l: RateLimiter, key: string, n: number) => Array.from({ length: n }, () => l.take(key).allowed);

describe("RateLimiter (token bucket)", () => {
  it("allows a burst, then refuses with the time until the next token", () => {
    const { l } = limiter(2, 3);
    expect(takeN(l, "a", 3)).toEqual([true, true, true]);
    expect(l.take("a")).toEqual({ allowed: false, retryAfterMs: 500 });
  });

  it("refills at the rate, never above the burst", () => {
    const { l, advance } = limiter(2, 3);
    takeN(l, "a", 3);
    advance(499);
    expect(l.take("a").allowed).toBe(false);
    advance(1); // 500 ms since empty: one token (the refused take did not cost one)
    expect(l.take("a").allowed).toBe(true);
    expect(l.take("a")).toEqual({ allowed: false, retryAfterMs: 500 });
    advance(60_000); // long idle: back to the burst, not 120 tokens
    expect(takeN(l, "a", 4)).toEqual([true, true, true, false]);
  });

  it("reports a partial token's remaining time", () => {
    const { l, advance } = limiter(4, 1);
    expect(l.take("a").allowed).toBe(true);
    advance(100); // 0.4 of a token
    expect(l.take("a")).toEqual({ allowed: false, retryAfterMs: 150 });
  });

  it("keeps one bucket per key", () => {
    const { l } = limiter(1, 1);
    expect(l.take("a").allowed).toBe(true);
    expect(l.take("a").allowed).toBe(false);
    expect(l.take("b").allowed).toBe(true);
  });

  it("drops buckets idle long enough to be full again", () => {
    const { l, advance } = limiter(10, 5); // full 500 ms after its last use
    l.take("a");
    advance(200);
    l.take("b");
    expect(l.size).toBe(2);
    advance(300); // a: 500 ms idle, b: 300 ms
    l.take("c");
    expect(l.size).toBe(2); // a dropped, b and c kept
    advance(1_000);
    l.take("d");
    expect(l.size).toBe(1);
  });

  it("a dropped idle bucket behaves exactly like the full one it replaced", () => {
    const { l, advance } = limiter(10, 5);
    takeN(l, "a", 5);
    advance(500);
    l.take("other"); // evicts a
    expect(takeN(l, "a", 6)).toEqual([true, true, true, true, true, false]);
  });

  it("caps the number of buckets, evicting the least recently used", () => {
    const { l } = limiter(1, 1, 3);
    for (const k of ["a", "b", "c"]) l.take(k);
    l.take("a"); // refused, but a is now the most recently used
    l.take("d"); // evicts b, the least recently used
    expect(l.size).toBe(3);
    expect(l.take("a").allowed).toBe(false); // a kept its empty bucket
    expect(l.take("c").allowed).toBe(false);
    expect(l.take("b").allowed).toBe(true); // b starts over with a full bucket, evicting d (now the least recently used)
    expect(l.size).toBe(3);
  });

  it("stays bounded under many distinct keys", () => {
    const { l, advance } = limiter(1, 1, 100);
    for (let i = 0; i < 10_000; i++) {
      l.take(`k${i}`);
      advance(0.01);
    }
    expect(l.size).toBe(100);
  });

  it("rejects nonsense options", () => {
    expect(() => new RateLimiter({ ratePerSec: 0, burst: 1 })).toThrow(/ratePerSec/);
    expect(() => new RateLimiter({ ratePerSec: 1, burst: 0 })).toThrow(/burst/);
    expect(() => new RateLimiter({ ratePerSec: 1, burst: 1, maxKeys: 0 })).toThrow(/maxKeys/);
  });
});

describe("rateLimiterFor", () => {
  it("is off at rate 0, and a burst of 0 means one second's worth", () => {
    expect(rateLimiterFor({ rateLimitPerSec: 0, rateLimitBurst: 10 })).toBeUndefined();
    expect(rateLimiterFor({ rateLimitPerSec: 20, rateLimitBurst: 0 })).toMatchObject({ ratePerSec: 20, burst: 20 });
    expect(rateLimiterFor({ rateLimitPerSec: 20, rateLimitBurst: 5 })).toMatchObject({ ratePerSec: 20, burst: 5 });
  });
});
