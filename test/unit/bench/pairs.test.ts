import { describe, expect, it } from "vitest";
import { median, medianRatio, rotate } from "../../../bench/lib/pairs.js";

describe("paired rounds' arithmetic", () => {
  it("rotates the order one place per round, so each name leads once in a cycle", () => {
    const names = ["tablemq", "rabbitmq-quorum", "ceiling"];
    expect([0, 1, 2, 3].map((r) => rotate(names, r)[0])).toEqual(["tablemq", "rabbitmq-quorum", "ceiling", "tablemq"]);
    expect(rotate(names, 1)).toEqual(["rabbitmq-quorum", "ceiling", "tablemq"]);
  });

  it("takes the ratio within each round, not of the medians", () => {
    // The machine halves its speed between rounds: both systems move together, the per-round ratio does not.
    const tablemq = [40_000, 20_000, 41_000];
    const peer = [30_000, 15_000, 30_000];
    const { ratios, median: m } = medianRatio(tablemq, peer);
    expect(ratios.map((r) => r!.toFixed(3))).toEqual(["1.333", "1.333", "1.367"]);
    expect(m).toBeCloseTo(4 / 3, 6);
  });

  it("leaves a failed measurement out of the median instead of counting it as zero", () => {
    const { ratios, median: m } = medianRatio([10, null, 30, 12], [10, 10, null, 6]);
    expect(ratios).toEqual([1, null, null, 2]);
    expect(m).toBe(1.5);
    expect(median([null, null])).toBeNaN();
    expect(median([3, 1, 2])).toBe(2);
  });
});
