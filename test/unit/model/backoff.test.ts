import { describe, expect, it } from "vitest";
import { backoffNs, jitter, JITTER_MIN, MAX_BACKOFF_NS, maxShift } from "../../../src/model/backoff.js";

const S = 1_000_000_000n; // ns per second

describe("backoff", () => {
  it("doubles per epoch within the jitter window", () => {
    for (let epoch = 0; epoch <= 3; epoch++) {
      const base = (30n * S) << BigInt(epoch);
      const lo = backoffNs(30_000, 0, epoch, 0.666666);
      const hi = backoffNs(30_000, 0, epoch, 1.333332);
      expect(lo).toBe(epoch === 0 ? 30n * S : BigInt(Math.floor(Number(base) * 0.666666)));
      expect(hi).toBe(BigInt(Math.floor(Number(base) * 1.333332)));
    }
  });

  it("never goes below minBackoff nor above maxBackoff", () => {
    expect(backoffNs(30_000, 0, 0, 0.7)).toBe(30n * S);
    expect(backoffNs(30_000, 100_000, 3, 1.3)).toBe(100n * S);
    expect(backoffNs(30_000, 100_000, 1, 1.0)).toBe(60n * S);
  });

  it("does not overflow at epoch 100: it stays at the capped maximum", () => {
    const b = backoffNs(30_000, 365 * 86_400_000, 100, 1.333332);
    expect(b > 30n * S).toBe(true);
    expect(b <= (MAX_BACKOFF_NS * 4n) / 3n).toBe(true);
    expect(backoffNs(30_000, 0, 100, 1)).toBe(backoffNs(30_000, 0, 64, 1));
    expect((30n * S) << BigInt(maxShift(30n * S))).toBeLessThanOrEqual(MAX_BACKOFF_NS);
    expect(backoffNs(30_000, 3_600_000, 100, 1.3)).toBe(3600n * S);
  });

  it("stops growing at a day when maxBackoff is 0, instead of parking a message for decades", () => {
    expect(backoffNs(30_000, 0, 11, 1)).toBe(30n * S * 2048n); // 17 h: still doubling
    expect(backoffNs(30_000, 0, 12, 1)).toBe(86_400n * S);
    expect(backoffNs(30_000, 0, 36, 1.333332)).toBe(86_400n * S);
    expect(backoffNs(2 * 86_400_000, 0, 5, 1.2)).toBe(2n * 86_400n * S); // a minimum past a day wins
  });

  it("is zero when minBackoff is zero", () => {
    expect(backoffNs(0, 0, 5, 1.2)).toBe(0n);
  });

  it("draws jitter in [0.666666, 1.333332)", () => {
    expect(jitter(() => 0)).toBe(JITTER_MIN);
    expect(jitter(() => 0.999999999)).toBeLessThan(1.333332);
    expect(jitter(() => 0.999999999)).toBeGreaterThan(1.3333);
  });
});
