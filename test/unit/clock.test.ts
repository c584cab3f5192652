import { describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import { Ticker } from "../../src/manager/ticker.js";
import { FakeClock, settle } from "../support/fake-clock.js";

describe("systemClock", () => {
  it("does not fire a timeout longer than 2^31 - 1 ms early (Node would fire it after 1 ms)", async () => {
    let fired = false;
    const handle = systemClock.setTimeout(() => (fired = true), 30 * 86_400_000);
    await new Promise((r) => setTimeout(r, 50));
    systemClock.clearTimeout(handle);
    expect(fired).toBe(false);
  });

  it("keeps a Ticker with a 30-day interval from running every millisecond", async () => {
    let runs = 0;
    const t = new Ticker(systemClock, 30 * 86_400_000, async () => {
      runs++;
    });
    t.start();
    await new Promise((r) => setTimeout(r, 100));
    await t.stop();
    expect(runs).toBe(0);
  });

  it("fires short timeouts and can cancel them", async () => {
    const fired: string[] = [];
    systemClock.setTimeout(() => fired.push("a"), 5);
    const b = systemClock.setTimeout(() => fired.push("b"), 5);
    systemClock.clearTimeout(b);
    await new Promise((r) => setTimeout(r, 30));
    expect(fired).toEqual(["a"]);
  });
});

describe("Ticker with an Infinity interval", () => {
  it("holds no timer between runs and runs only when asked", async () => {
    const clock = new FakeClock();
    const runs: number[] = [];
    const t = new Ticker(clock, Infinity, async () => {
      runs.push(clock.now());
    });
    t.start();
    expect(clock.pendingTimers).toBe(0);
    await clock.advance(86_400_000);
    expect(runs).toEqual([]);
    const t0 = clock.now();
    t.runBy(t0 + 500);
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(500);
    expect(runs).toEqual([t0 + 500]);
    expect(clock.pendingTimers).toBe(0); // after the run: no period to wait for
    t.trigger();
    await settle();
    expect(runs).toHaveLength(2);
    expect(clock.pendingTimers).toBe(0);
    await t.stop();
  });
});
