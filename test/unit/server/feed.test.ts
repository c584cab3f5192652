import { describe, expect, it } from "vitest";
import { silentLogger } from "../../../src/logger.js";
import { FEED_DESCRIBE_SPACING, FEED_TABLES_MS, type FeedListener, LiveFeed } from "../../../src/server/dashboard/feed.js";
import { RateHistory } from "../../../src/server/dashboard/history.js";
import type { TableAnswer } from "../../../src/wire.js";
import { DEFAULT_OPTIONS } from "../../../src/options.js";

const described = (name: string, ready: number): TableAnswer => ({
  name,
  options: { ...DEFAULT_OPTIONS },
  stats: { ready, delayed: 0, inFlight: 0, acked: 0, dead: 0, receivers: 0, cached: 0 },
});

function listener(sees: (table: string) => boolean, backlog = 0) {
  const got: Array<{ event: string; data: any }> = [];
  let ended = false;
  const l: FeedListener = {
    canSee: sees,
    send: (event, data) => {
      got.push({ event, data: JSON.parse(data) });
      return backlog;
    },
    end: () => void (ended = true),
  };
  return { l, got, ended: () => ended };
}

describe("LiveFeed", () => {
  it("sends each listener only its tables, describes them only while someone listens, and records depth", async () => {
    let now = 10_000;
    let describes = 0;
    const history = new RateHistory();
    const feed = new LiveFeed({
      history,
      now: () => now,
      log: silentLogger,
      describeAll: async () => {
        describes++;
        return [described("a", 1), described("b", 2)];
      },
    });
    feed.tick();
    expect(describes).toBe(0); // nobody listens
    const all = listener(() => true);
    const onlyB = listener((t) => t === "b");
    const removeAll = feed.add(all.l);
    feed.add(onlyB.l);
    await new Promise((r) => setTimeout(r, 0));
    expect(all.got.find((e) => e.event === "tables")!.data.tables.map((t: TableAnswer) => t.name)).toEqual(["a", "b"]);
    expect(onlyB.got.find((e) => e.event === "tables")!.data.tables.map((t: TableAnswer) => t.name)).toEqual(["b"]);
    expect(history.of("b").depth.at(-1)).toMatchObject({ ready: 2 });

    history.sample(
      now,
      new Map([
        ["a", { enqueued: 0, sent: 0, acked: 0 }],
        ["b", { enqueued: 0, sent: 0, acked: 0 }],
      ]),
    );
    now += 1_000;
    history.sample(
      now,
      new Map([
        ["a", { enqueued: 4, sent: 0, acked: 0 }],
        ["b", { enqueued: 1, sent: 0, acked: 0 }],
      ]),
    );
    feed.tick();
    expect(onlyB.got.filter((e) => e.event === "rates").at(-1)!.data).toEqual({
      t: now,
      tables: { b: { enqueued: 1, delivered: 0, acked: 0 } },
    });
    const before = describes;
    now += FEED_TABLES_MS;
    feed.tick();
    await new Promise((r) => setTimeout(r, 0));
    expect(describes).toBe(before + 1);
    removeAll();
    feed.close();
    expect(onlyB.ended()).toBe(true);
    expect(all.ended()).toBe(false); // removed before the close
  });

  it("describes the tables once at a time, however slow the database, and less often the longer it takes", async () => {
    let now = 0;
    let describes = 0;
    let finish: (() => void) | undefined;
    const feed = new LiveFeed({
      history: new RateHistory(),
      now: () => now,
      log: silentLogger,
      describeAll: () => {
        describes++;
        return new Promise((resolve) => (finish = () => resolve([])));
      },
    });
    feed.add(listener(() => true).l);
    for (let i = 0; i < 10; i++) {
      now += FEED_TABLES_MS;
      feed.tick();
    }
    expect(describes).toBe(1);
    // The ticks that came meanwhile left nothing queued behind it.
    for (let i = 0; i < 5; i++) {
      finish!();
      await new Promise((r) => setTimeout(r, 0));
    }
    expect(describes).toBe(1);
    // It took 10 steps: the next waits FEED_DESCRIBE_SPACING times as long from its start, not one step.
    now += FEED_TABLES_MS;
    feed.tick();
    expect(describes).toBe(1);
    now = FEED_DESCRIBE_SPACING * 10 * FEED_TABLES_MS;
    feed.tick();
    expect(describes).toBe(2);
  });

  it("cuts off a listener that does not keep up", async () => {
    const feed = new LiveFeed({ history: new RateHistory(), now: () => 0, log: silentLogger, describeAll: async () => [] });
    const slow = listener(() => true, 2 * 1024 * 1024);
    feed.add(slow.l);
    await new Promise((r) => setTimeout(r, 0));
    expect(slow.ended()).toBe(true);
    expect(feed.size).toBe(0);
  });
});
