import { describe, expect, it } from "vitest";
import { reconnectDelay, resolveReconnect } from "../../../src/client/backoff.js";

const mid = () => 0.5; // jitter factor 1.0
const low = () => 0; // jitter factor 0.5
const high = () => 0.999999; // jitter factor ~1.5

describe("reconnectDelay", () => {
  it("doubles from minDelayMs with each attempt", () => {
    const opts = { minDelayMs: 100, maxDelayMs: 100_000 };
    expect([0, 1, 2, 3, 4].map((a) => reconnectDelay(a, opts, mid))).toEqual([100, 200, 400, 800, 1600]);
  });

  it("is capped at maxDelayMs, jitter included", () => {
    const opts = { minDelayMs: 100, maxDelayMs: 1_000 };
    expect(reconnectDelay(10, opts, mid)).toBe(1_000);
    expect(reconnectDelay(10, opts, high)).toBe(1_000);
    expect(reconnectDelay(10, opts, low)).toBe(500);
  });

  it("never goes below minDelayMs", () => {
    expect(reconnectDelay(0, { minDelayMs: 100, maxDelayMs: 1_000 }, low)).toBe(100);
  });

  it("spreads delays by a jitter of 0.5x to 1.5x", () => {
    const opts = { minDelayMs: 100, maxDelayMs: 100_000 };
    expect(reconnectDelay(3, opts, low)).toBe(400);
    expect(reconnectDelay(3, opts, high)).toBe(1_199);
    const seen = new Set(Array.from({ length: 50 }, () => reconnectDelay(3, opts)));
    for (const d of seen) expect(d >= 400 && d < 1_200).toBe(true);
    expect(seen.size).toBeGreaterThan(1);
  });

  it("does not overflow for huge attempt counts", () => {
    expect(reconnectDelay(1e9, { minDelayMs: 100, maxDelayMs: 10_000 }, mid)).toBe(10_000);
  });

  it("defaults to 100 ms .. 10 s", () => {
    expect(resolveReconnect()).toEqual({ minDelayMs: 100, maxDelayMs: 10_000 });
    expect(reconnectDelay(0, {}, mid)).toBe(100);
    expect(reconnectDelay(50, {}, mid)).toBe(10_000);
  });

  it("rejects a maxDelayMs below minDelayMs", () => {
    expect(() => resolveReconnect({ minDelayMs: 500, maxDelayMs: 100 })).toThrow(/maxDelayMs/);
    expect(resolveReconnect({ minDelayMs: 20_000 })).toEqual({ minDelayMs: 20_000, maxDelayMs: 20_000 });
  });
});
