import { describe, expect, it } from "vitest";
import { RateHistory } from "../../../src/server/dashboard/history.js";

const counted = (enqueued: number, sent = 0, acked = 0) => ({ enqueued, sent, acked });

describe("RateHistory", () => {
  it("turns counters into per-second rates, a new table counting from zero since the last sample", () => {
    const h = new RateHistory(10);
    h.sample(1_000, new Map());
    h.sample(2_000, new Map([["a", counted(5, 2, 1)]])); // made since the first sample
    h.sample(4_000, new Map([["a", counted(15, 12, 11)]])); // two seconds later
    expect(h.of("a").rates).toEqual([
      { t: 2_000, enqueued: 5, delivered: 2, acked: 1 },
      { t: 4_000, enqueued: 5, delivered: 5, acked: 5 },
    ]);
    expect(h.latest().get("a")).toEqual({ t: 4_000, enqueued: 5, delivered: 5, acked: 5 });
  });

  it("counts from zero again when counters go down (dropped and made again), and forgets dropped tables", () => {
    const h = new RateHistory(10);
    h.sample(0, new Map([["a", counted(0)]]));
    h.sample(1_000, new Map([["a", counted(100)]]));
    h.sample(2_000, new Map([["a", counted(3)]]));
    expect(h.of("a").rates.map((p) => p.enqueued)).toEqual([100, 3]); // the first sample ever has no time before it
    h.sample(3_000, new Map());
    expect(h.of("a")).toEqual({ rates: [], depth: [] });
  });

  it("keeps at most its size of points, oldest first", () => {
    const h = new RateHistory(3);
    for (let i = 0; i <= 5; i++) h.sample(i * 1_000, new Map([["a", counted(i * 2)]]));
    expect(h.of("a").rates.map((p) => p.t)).toEqual([3_000, 4_000, 5_000]);
    for (let i = 0; i < 4; i++) h.recordDepth(i, [{ name: "a", stats: { ready: i, delayed: 0, inFlight: 0, dead: 0 } }]);
    expect(h.of("a").depth.map((p) => p.ready)).toEqual([1, 2, 3]);
  });

  it("reads an idle table's points as zeros, before, between and after its bursts", () => {
    const h = new RateHistory(4);
    h.sample(
      0,
      new Map([
        ["idle", counted(0)],
        ["busy", counted(0)],
      ]),
    );
    h.sample(
      1_000,
      new Map([
        ["idle", counted(0)],
        ["busy", counted(0)],
      ]),
    );
    h.sample(
      2_000,
      new Map([
        ["idle", counted(0)],
        ["busy", counted(3)],
      ]),
    );
    h.sample(
      3_000,
      new Map([
        ["idle", counted(0)],
        ["busy", counted(3)],
      ]),
    );
    expect(h.of("busy").rates.map((p) => [p.t, p.enqueued])).toEqual([
      [1_000, 0],
      [2_000, 3],
      [3_000, 0],
    ]);
    expect(h.of("idle").rates.map((p) => [p.t, p.enqueued])).toEqual([
      [1_000, 0],
      [2_000, 0],
      [3_000, 0],
    ]);
    for (let i = 4; i <= 9; i++)
      h.sample(
        i * 1_000,
        new Map([
          ["idle", counted(0)],
          ["busy", counted(3)],
        ]),
      ); // a whole ring of zeros
    expect(h.of("busy").rates.map((p) => [p.t, p.enqueued])).toEqual([
      [6_000, 0],
      [7_000, 0],
      [8_000, 0],
      [9_000, 0],
    ]);
    h.sample(
      10_000,
      new Map([
        ["idle", counted(0)],
        ["busy", counted(5)],
      ]),
    );
    expect(h.of("busy").rates.map((p) => p.enqueued)).toEqual([0, 0, 0, 2]);
    expect(h.latest().get("idle")).toEqual({ t: 10_000, enqueued: 0, delivered: 0, acked: 0 });
  });
});
