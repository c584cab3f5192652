/**
 * RedisBus against a real Redis: the shared one at 127.0.0.1:6379 (TABLEMQ_TEST_REDIS_URL overrides) for
 * the delivery test, and a redis-server of its own (killed and restarted) for the fault test. Each skips
 * when what it needs is not there.
 */
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import type { BusEvent } from "../../src/cluster/bus-events.js";
import { RedisBus, type ResyncReason } from "../../src/cluster/redis-bus.js";
import { systemClock } from "../../src/clock.js";
import { silentLogger } from "../../src/logger.js";
import { freePort, hasRedisServer, killProcess, REDIS_URL, redisAnswers, startRedis } from "../support/redis.js";
import { waitUntil } from "../support/wait.js";

const hasRedis = await redisAnswers();

interface Node {
  bus: RedisBus;
  received: Array<{ events: BusEvent[]; from: string }>;
  resyncs: ResyncReason[];
  states: string[];
}

const buses: RedisBus[] = [];

function node(url: string, serverId: string, channel: string): Node {
  const n: Node = { bus: undefined as unknown as RedisBus, received: [], resyncs: [], states: [] };
  n.bus = new RedisBus({
    url,
    serverId,
    channel,
    clock: systemClock,
    log: silentLogger,
    onEvents: (events, from) => n.received.push({ events, from }),
    onResync: (why) => n.resyncs.push(why),
    onStatus: (s) => n.states.push(s.state),
  });
  buses.push(n.bus);
  return n;
}

const uniquePrefix = () => `tablemq-test:${randomBytes(6).toString("hex")}`;
const tables = (n: Node) => n.received.flatMap((r) => r.events.flatMap((e) => ("table" in e ? [e.table] : [])));

afterAll(async () => {
  await Promise.all(buses.map((b) => b.close()));
});

describe.skipIf(!hasRedis)("RedisBus with Redis", () => {
  it("delivers an event published by A to B, and not back to A", async () => {
    const prefix = uniquePrefix();
    const a = node(REDIS_URL, "A", prefix);
    const b = node(REDIS_URL, "B", prefix);
    const stranger = node(REDIS_URL, "C", uniquePrefix());
    await Promise.all([a.bus.open(), b.bus.open(), stranger.bus.open()]);
    expect([a.bus.status().state, b.bus.status().state]).toEqual(["up", "up"]);

    a.bus.publish({ kind: "due", table: "orders", at: 1_700_000_000_000 });
    a.bus.publish({ kind: "table", table: "jobs", change: "created" });
    await waitUntil(() => tables(b).length >= 2, "B receives A's events", 2_000);
    expect(b.received.flatMap((r) => r.events)).toEqual([
      { kind: "due", table: "orders", at: 1_700_000_000_000 },
      { kind: "table", table: "jobs", change: "created" },
    ]);
    expect(b.received.every((r) => r.from === "A")).toBe(true);
    await waitUntil(() => a.bus.stats.ignoredOwn >= 2 && a.bus.stats.published >= 2, "A sees its own echoes", 2_000);
    expect(a.received).toEqual([]);
    expect(stranger.received).toEqual([]);
    expect(a.bus.stats).toMatchObject({ published: 2, publishedEvents: 2, dropped: 0 });
    await Promise.all([a.bus.close(), b.bus.close(), stranger.bus.close()]);
  });
});

describe.skipIf(!hasRedisServer())("RedisBus when its Redis is killed and restarted", () => {
  const children: ChildProcess[] = [];

  afterAll(async () => {
    await Promise.all(buses.map((b) => b.close()));
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });

  async function startOwnRedis(port: number): Promise<ChildProcess> {
    const child = await startRedis(port);
    children.push(child);
    return child;
  }

  it("goes down, comes back up, resyncs and passes events again within a second of the restart", async () => {
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    const redis = await startOwnRedis(port);
    const prefix = uniquePrefix();
    // Default backoff (100 ms doubling): the restart comes within a few attempts of the kill.
    const a = node(url, "A", prefix);
    const b = node(url, "B", prefix);
    await Promise.all([a.bus.open(), b.bus.open()]);
    a.bus.publish({ kind: "due", table: "before" });
    await waitUntil(() => tables(b).includes("before"), "B receives an event before the kill", 2_000);

    await killProcess(redis);
    await waitUntil(() => a.bus.status().state === "down" && b.bus.status().state === "down", "both buses go down", 3_000);
    a.bus.publish({ kind: "due", table: "lost" });
    expect(a.bus.stats.dropped).toBeGreaterThanOrEqual(1);

    await startOwnRedis(port); // killed in afterAll
    const restartedAt = Date.now();
    await waitUntil(() => a.bus.status().state === "up" && b.bus.status().state === "up", "both buses come back up", 1_000);
    await waitUntil(() => b.resyncs.includes("reconnected") && a.resyncs.includes("reconnected"), "onResync('reconnected')", 1_000);
    for (let i = 0; !tables(b).includes("after") && Date.now() - restartedAt < 1_000; i++) {
      a.bus.publish({ kind: "due", table: "after" });
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(tables(b)).toContain("after");
    expect(Date.now() - restartedAt).toBeLessThan(1_200);
    expect(tables(b)).not.toContain("lost");
    expect(a.states).toEqual(["up", "down", "up"]);
    expect(b.states).toEqual(["up", "down", "up"]);
    expect(a.bus.stats.reconnects).toBeGreaterThanOrEqual(2);
    await Promise.all([a.bus.close(), b.bus.close()]);
    expect(a.bus.status().state).toBe("closed");
  });
});
