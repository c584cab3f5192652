import { describe, expect, it } from "vitest";
import { SWEEP_CHUNK, SWEEP_TICK_MS, Sweeper, type SweepTarget } from "../../../src/engine/sweeper.js";
import { silentLogger } from "../../../src/logger.js";
import { resolveOptions } from "../../../src/options.js";
import type { SweepResult } from "../../../src/store/types.js";
import { FakeClock, settle } from "../../support/fake-clock.js";
import { MemoryStore } from "../../support/memory-store.js";

/** A table that wants its acks looked at every `everyMs` and counts how often it is asked and looked at. */
class Target implements SweepTarget {
  asked = 0;
  looks: number[] = [];
  lookedAt = -Infinity;
  dueAt: number | undefined;
  constructor(readonly everyMs: number) {}
  nextSweep() {
    this.asked++;
    return { dueAt: this.dueAt, acksAt: this.lookedAt + this.everyMs };
  }
  swept(result: SweepResult, at: number) {
    this.lookedAt = at;
    this.looks.push(at);
    if (result.due !== undefined) this.dueAt = undefined; // as a poll would: due again a poll interval later
  }
}

async function setup(count: number, everyMs = 30_000) {
  const clock = new FakeClock();
  const store = new MemoryStore();
  const sweeper = new Sweeper({ store, clock, log: silentLogger });
  const targets = Array.from({ length: count }, (_, i) => {
    const t = `t${i}`;
    void store.createTable(t, resolveOptions({}));
    const target = new Target(everyMs);
    sweeper.add(t, target);
    return target;
  });
  sweeper.start();
  await settle();
  return { clock, store, sweeper, targets };
}

describe("Sweeper", () => {
  it("looks at each table when it asks, SWEEP_CHUNK tables a statement, and asks no table between its looks", async () => {
    const { clock, store, sweeper, targets } = await setup(1_000);
    expect(store.calls.sweep).toBe(1_000 / SWEEP_CHUNK); // all at once at the start
    expect(targets.every((t) => t.looks.length === 1)).toBe(true);
    const asked = targets.reduce((n, t) => n + t.asked, 0);
    await clock.advance(30_000 - SWEEP_TICK_MS);
    expect(targets.reduce((n, t) => n + t.asked, 0)).toBe(asked); // 29 ticks touched none of them
    expect(store.calls.sweep).toBe(1_000 / SWEEP_CHUNK);
    await clock.advance(SWEEP_TICK_MS);
    expect(store.calls.sweep).toBe(2 * (1_000 / SWEEP_CHUNK));
    expect(targets.every((t) => t.looks.length === 2 && t.looks[1]! - t.looks[0]! === 30_000)).toBe(true);
    await sweeper.stop();
  });

  it("looks at a table whose time came sooner (replan) on the next tick, and one asking sooner than a tick, when it asks", async () => {
    const { clock, sweeper, targets } = await setup(2, 30_000);
    const [a, b] = targets as [Target, Target];
    await clock.advance(5_000);
    a.dueAt = clock.now(); // e.g. its poll interval shortened
    sweeper.replan("t0");
    await clock.advance(SWEEP_TICK_MS);
    expect(a.looks).toHaveLength(2);
    expect(b.looks).toHaveLength(1);
    a.dueAt = undefined;
    const fast = new Target(300);
    sweeper.add("t1", fast); // t1 is followed by a faster target now
    await clock.advance(SWEEP_TICK_MS);
    const first = fast.looks.length;
    await clock.advance(3_000);
    expect(fast.looks.length - first).toBe(10); // every 300 ms
    await sweeper.stop();
  });

  it("after a failed look, waits longer before the next (doubling), then goes on", async () => {
    const { clock, store, sweeper, targets } = await setup(1);
    store.failNext("sweep", 3);
    const target = targets[0]!;
    target.lookedAt = -Infinity; // wants looking at now, and again at every tick until a look succeeds
    sweeper.replan("t0");
    const before = store.calls.sweep;
    await clock.advance(SWEEP_TICK_MS + 2 * SWEEP_TICK_MS + 4 * SWEEP_TICK_MS);
    expect(store.calls.sweep - before).toBe(3); // failed after 1 s, 2 s and 4 s: not every tick
    await clock.advance(8 * SWEEP_TICK_MS);
    expect(store.calls.sweep - before).toBe(4);
    expect(target.looks).toHaveLength(2);
    await sweeper.stop();
  });
});
