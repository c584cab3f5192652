import { describe, expect, it } from "vitest";
import { parseEnvelope } from "../../../src/cluster/bus-events.js";
import { MAX_WAKE_ITEMS } from "../../../src/model/wake.js";
import { RedisNotifier, wakesOf } from "../../../src/sql/notify.js";

describe("wakesOf", () => {
  it("gives one wake per table, due times sorted and once, ids once", () => {
    expect(
      wakesOf([
        { table: "a", wake: { dueAt: [20, 10] } },
        { table: "b", wake: {} },
        { table: "a", wake: { dueAt: [10], forget: ["1"] } },
      ]),
    ).toEqual([
      { table: "a", note: { dueAt: [10, 20], forget: ["1"] } },
      { table: "b", note: {} },
    ]);
  });

  it("splits a table's wake into parts of at most MAX_WAKE_ITEMS due times and ids, none lost", () => {
    const ids = Array.from({ length: MAX_WAKE_ITEMS * 2 + 1 }, (_, i) => String(i));
    const wakes = wakesOf([{ table: "a", wake: { forget: ids, dueAt: [1, 2] } }]);
    expect(wakes).toHaveLength(3);
    expect(wakes.flatMap((w) => w.note.forget ?? [])).toEqual(ids);
    expect(wakes.flatMap((w) => w.note.dueAt ?? [])).toEqual([1, 2]);
    for (const w of wakes) expect(w.note.forget!.length).toBeLessThanOrEqual(MAX_WAKE_ITEMS);
  });
});

describe("RedisNotifier", () => {
  it("publishes the wakes on the nodes' channel as a bus envelope the nodes parse", async () => {
    const published: Array<[string, string]> = [];
    const notifier = new RedisNotifier({ redis: { publish: async (c, m) => published.push([c, m]) }, database: "shop" });
    expect(await notifier.notify({ table: "orders", wake: { dueAt: [5], forget: ["7"] } })).toBe(true);
    expect(published).toHaveLength(1);
    const [channel, message] = published[0]!;
    expect(channel).toBe("tablemq:shop:events");
    expect(parseEnvelope(message)?.events).toEqual([{ kind: "wake", table: "orders", dueAt: [5], forget: ["7"] }]);
  });

  it("does not throw when Redis fails: it resolves false and reports each table", async () => {
    const errors: string[] = [];
    const notifier = new RedisNotifier({
      redis: { publish: async () => Promise.reject(new Error("down")) },
      database: "shop",
      onError: (_err, table) => errors.push(table),
    });
    expect(await notifier.notify({ table: "a", wake: {} }, { table: "b", wake: {} })).toBe(false);
    expect(errors.sort()).toEqual(["a", "b"]);
  });
});
