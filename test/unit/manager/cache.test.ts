import { describe, expect, it } from "vitest";
import { PriorityCache } from "../../../src/manager/cache.js";
import type { MessageRow } from "../../../src/model/messages.js";

const row = (id: string, priority = 50, timeNext = 0): MessageRow => ({ id, priority, timeNext, epoch: 0, payload: "{}" });

describe("PriorityCache", () => {
  it("pops by priority, then by due time, then by arrival", () => {
    const c = new PriorityCache(10);
    c.add(row("late-low", 50, 300));
    c.add(row("early-low", 50, 100));
    c.add(row("high", 10, 900));
    c.add(row("early-low-2", 50, 100));
    c.add(row("lowest", 200, 0));
    expect(c.popBatch(10).map((r) => r.id)).toEqual(["high", "early-low", "early-low-2", "late-low", "lowest"]);
  });

  it("treats adding an id that is queued or in flight as a no-op", () => {
    const c = new PriorityCache(10);
    expect(c.add(row("a"))).toBe("added");
    expect(c.add(row("a", 1))).toBe("present");
    expect(c.size).toBe(1);
    expect(c.pop()?.priority).toBe(50); // the first copy, not the second
    expect(c.add(row("a"))).toBe("present"); // in flight: still a no-op
    expect(c.queuedCount).toBe(0);
    expect(c.sendingCount).toBe(1);
    expect(c.pop()).toBeUndefined();
  });

  it("refuses adds when queued plus in flight reach capacity", () => {
    const c = new PriorityCache(2);
    expect(c.add(row("a"))).toBe("added");
    expect(c.add(row("b"))).toBe("added");
    expect(c.add(row("c"))).toBe("full");
    c.pop();
    expect(c.add(row("c"))).toBe("full"); // a is in flight and still counts
    c.discard(["a"]);
    expect(c.add(row("c"))).toBe("added");
  });

  it("discards queued and in-flight ids, and clear empties everything", () => {
    const c = new PriorityCache(10);
    c.add(row("a"));
    c.add(row("b"));
    c.add(row("c"));
    c.pop(); // a in flight
    c.discard(["a", "b"]);
    expect(c.has("a")).toBe(false);
    expect(c.has("b")).toBe(false);
    expect(c.popBatch(5).map((r) => r.id)).toEqual(["c"]);
    c.add(row("d"));
    c.clear();
    expect(c.size).toBe(0);
    expect(c.isEmpty()).toBe(true);
    expect(c.pop()).toBeUndefined();
  });

  it("evicts queued ids (an ack) so they are never popped, but keeps in-flight ids", () => {
    const c = new PriorityCache(10);
    c.add(row("a", 1));
    c.add(row("b", 2));
    c.add(row("c", 3));
    expect(c.pop()?.id).toBe("a");
    expect(c.evict(["a", "b"])).toBe(1);
    expect(c.has("a")).toBe(true); // still in flight
    expect(c.has("b")).toBe(false);
    expect(c.popBatch(5).map((r) => r.id)).toEqual(["c"]);
    expect(c.add(row("b"))).toBe("added"); // can come back later, e.g. after a reschedule falls due
    expect(c.pop()?.id).toBe("b");
  });

  it("keeps order correct through heavy eviction (compaction)", () => {
    const c = new PriorityCache(10_000);
    for (let i = 0; i < 1000; i++) c.add(row(`m${i}`, i % 7, i));
    c.evict(Array.from({ length: 900 }, (_, i) => `m${i}`));
    const out = c.popBatch(1000);
    expect(out.map((r) => r.id)).toHaveLength(100);
    const sorted = [...out].sort((a, b) => a.priority - b.priority || a.timeNext - b.timeNext);
    expect(out).toEqual(sorted);
  });
});

describe("PriorityCache.popBatch with a filter", () => {
  it("leaves declined rows queued in their place", () => {
    const c = new PriorityCache(10);
    for (const [id, p] of [
      ["a", 1],
      ["b", 2],
      ["c", 3],
      ["d", 4],
    ] as const)
      c.add(row(id, p));
    expect(c.popBatch(2, (r) => r.id !== "a" && r.id !== "c").map((r) => r.id)).toEqual(["b", "d"]);
    expect(c.popBatch(5).map((r) => r.id)).toEqual(["a", "c"]);
  });
});
