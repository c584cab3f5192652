import { sql } from "kysely";
import { afterAll, beforeAll, beforeEach, expect, it } from "vitest";
import { resolveOptions } from "../../src/options.js";
import { NODE_SLOTS, webhookLeaseKey } from "../../src/store/cluster-types.js";
import { MysqlClusterStore, NODES_TABLE, WEBHOOK_LEASES_TABLE } from "../../src/store/mysql/cluster.js";
import { createMysqlStore, type MysqlStore } from "../../src/store/mysql/store.js";
import { describeWithDatabase, useOwnDatabase } from "../support/database.js";

const NOW = 1_700_000_000_000;
const STALE = 6_000;
const TTL = 10_000;

const node = (id: string, over: { url?: string | null; redis?: boolean } = {}) => ({
  id,
  url: over.url === undefined ? `http://${id}.test:8080` : over.url,
  version: "1.2.3",
  startedAt: NOW - 1_000,
  redis: over.redis ?? false,
});

describeWithDatabase("MysqlClusterStore", () => {
  const database = useOwnDatabase("cluster_store");
  let store: MysqlStore;
  let cluster: MysqlClusterStore;
  beforeAll(async () => {
    store = createMysqlStore(database.url, { connectionLimit: 8 });
    await store.createTable("orders", resolveOptions());
  });
  beforeEach(async () => {
    cluster = new MysqlClusterStore(store.db);
    await sql`DROP TABLE IF EXISTS ${sql.table(NODES_TABLE)}, ${sql.table(WEBHOOK_LEASES_TABLE)}`.execute(store.db);
  });
  afterAll(async () => {
    await store?.close();
  });

  const ownTables = async () => {
    const { rows } = await sql<{ name: string }>`
      SELECT table_name AS name FROM information_schema.tables
      WHERE table_schema = DATABASE() AND table_name LIKE 'tablemq\\_%' ORDER BY table_name`.execute(store.db);
    return rows.map((r) => r.name);
  };

  it("makes its tables on first use, and discovery does not take them for message tables", async () => {
    expect(await cluster.listNodes()).toEqual([]);
    expect(await cluster.acquireWebhookLeases("a", [], NOW, TTL)).toEqual(new Set());
    expect(await ownTables()).toEqual(expect.arrayContaining([NODES_TABLE, WEBHOOK_LEASES_TABLE]));
    expect((await store.discoverTables()).map((t) => t.name)).toEqual(["orders"]);
    expect(await store.createTable(NODES_TABLE, resolveOptions())).toBe(false);
    expect(await store.createTable(WEBHOOK_LEASES_TABLE, resolveOptions())).toBe(false);
  });

  it("makes its tables again if they were dropped behind its back", async () => {
    await cluster.joinNode(node("a"), NOW, NOW - STALE);
    await sql`DROP TABLE ${sql.table(NODES_TABLE)}`.execute(store.db);
    expect(await cluster.joinNode(node("b"), NOW, NOW - STALE)).toBe(0);
    expect((await cluster.listNodes()).map((n) => n.id)).toEqual(["b"]);
  });

  it("registers nodes with the lowest free slots, and lists them with their fields", async () => {
    expect(await cluster.joinNode(node("a"), NOW, NOW - STALE)).toBe(0);
    expect(await cluster.joinNode(node("b", { url: null, redis: true }), NOW + 1, NOW + 1 - STALE)).toBe(1);
    expect(await cluster.joinNode(node("c"), NOW + 2, NOW + 2 - STALE)).toBe(2);
    await cluster.leaveNode("b");
    expect(await cluster.joinNode(node("d"), NOW + 3, NOW + 3 - STALE)).toBe(1);
    expect(await cluster.listNodes()).toEqual([
      { id: "a", slot: 0, url: "http://a.test:8080", version: "1.2.3", startedAt: NOW - 1_000, heartbeatAt: NOW, redis: false },
      { id: "d", slot: 1, url: "http://d.test:8080", version: "1.2.3", startedAt: NOW - 1_000, heartbeatAt: NOW + 3, redis: false },
      { id: "c", slot: 2, url: "http://c.test:8080", version: "1.2.3", startedAt: NOW - 1_000, heartbeatAt: NOW + 2, redis: false },
    ]);
  });

  it("keeps a preferred slot when free, and replaces a node's own row when it joins again", async () => {
    expect(await cluster.joinNode(node("a"), NOW, NOW - STALE, 7)).toBe(7);
    expect(await cluster.joinNode(node("b"), NOW, NOW - STALE, 7)).toBe(0); // taken: the lowest free
    expect(await cluster.joinNode(node("a"), NOW + 5, NOW + 5 - STALE, 7)).toBe(7);
    expect((await cluster.listNodes()).map((n) => [n.id, n.slot, n.heartbeatAt])).toEqual([
      ["b", 0, NOW],
      ["a", 7, NOW + 5],
    ]);
  });

  it("takes the slot of a node whose heartbeat went stale, deleting its row", async () => {
    await cluster.joinNode(node("dead"), NOW, NOW - STALE);
    await cluster.joinNode(node("live"), NOW, NOW - STALE);
    const later = NOW + STALE + 1;
    expect(await cluster.heartbeat("live", later)).toBe(true);
    expect(await cluster.joinNode(node("new"), later, later - STALE)).toBe(0);
    expect((await cluster.listNodes()).map((n) => n.id)).toEqual(["new", "live"]);
    expect(await cluster.heartbeat("dead", later)).toBe(false); // it must join again
  });

  it("heartbeats: true while the row is there (even at the same time), writing url and redis when given", async () => {
    await cluster.joinNode(node("a"), NOW, NOW - STALE);
    expect(await cluster.heartbeat("a", NOW)).toBe(true); // nothing changes: still found
    expect(await cluster.heartbeat("a", NOW + 10, { redis: true })).toBe(true);
    expect(await cluster.heartbeat("a", NOW + 20, { url: null })).toBe(true);
    expect((await cluster.listNodes())[0]).toMatchObject({ heartbeatAt: NOW + 20, redis: true, url: null });
    await cluster.leaveNode("a");
    expect(await cluster.heartbeat("a", NOW + 30)).toBe(false);
  });

  it("gives concurrent joiners distinct slots", async () => {
    const ids = Array.from({ length: 16 }, (_, i) => `n${i}`);
    const slots = await Promise.all(ids.map((id) => cluster.joinNode(node(id), NOW, NOW - STALE)));
    expect(new Set(slots).size).toBe(16);
    expect([...slots].sort((a, b) => a - b)).toEqual(Array.from({ length: 16 }, (_, i) => i));
  });

  it("refuses a join when every slot is held by a live node", async () => {
    await cluster.listNodes(); // makes the table
    const values = Array.from({ length: NODE_SLOTS }, (_, slot) => sql`(${`n${slot}`}, ${slot}, NULL, '1', ${NOW}, ${NOW}, 0)`);
    await sql`INSERT INTO ${sql.table(NODES_TABLE)} (id, slot, url, version, started_at, heartbeat_at, redis) VALUES ${sql.join(values)}`.execute(
      store.db,
    );
    await expect(cluster.joinNode(node("late"), NOW, NOW - STALE)).rejects.toThrow(new RegExp(`all ${NODE_SLOTS} node slots`));
    expect(await cluster.joinNode(node("late"), NOW + STALE + 1, NOW + 1)).toBe(0); // once they went stale
  });

  const w = (name: string) => ({ table: "orders", name });
  const keys = (...names: string[]) => new Set(names.map((n) => webhookLeaseKey("orders", n)));

  it("takes free leases, renews its own, and leaves others' alone until they run out", async () => {
    expect(await cluster.acquireWebhookLeases("a", [w("x"), w("y")], NOW, TTL)).toEqual(keys("x", "y"));
    expect(await cluster.acquireWebhookLeases("b", [w("x"), w("y"), w("z")], NOW + 1, TTL)).toEqual(keys("z"));
    // a renews at NOW + 5000: good until NOW + 15000.
    expect(await cluster.acquireWebhookLeases("a", [w("x")], NOW + 5_000, TTL)).toEqual(keys("x", "y"));
    // y ran out at NOW + 10000, x did not.
    expect(await cluster.acquireWebhookLeases("b", [w("x"), w("y"), w("z")], NOW + TTL, TTL)).toEqual(keys("y", "z"));
    expect(await cluster.acquireWebhookLeases("a", [w("x"), w("y")], NOW + TTL + 1, TTL)).toEqual(keys("x"));
  });

  it("gives a contended lease to exactly one of the nodes asking at once", async () => {
    const owners = ["a", "b", "c", "d", "e", "f"];
    const results = await Promise.all(owners.map((o) => cluster.acquireWebhookLeases(o, [w("x"), w("y")], NOW, TTL)));
    for (const name of ["x", "y"]) {
      expect(results.filter((held) => held.has(webhookLeaseKey("orders", name)))).toHaveLength(1);
    }
  });

  it("releases only the owner's leases, and a released lease is free at once", async () => {
    await cluster.acquireWebhookLeases("a", [w("x"), w("y")], NOW, TTL);
    await cluster.releaseWebhookLeases("b", keys("x"));
    expect(await cluster.acquireWebhookLeases("b", [w("x")], NOW + 1, TTL)).toEqual(keys());
    await cluster.releaseWebhookLeases("a", keys("x"));
    await cluster.releaseWebhookLeases("a", []);
    expect(await cluster.acquireWebhookLeases("b", [w("x")], NOW + 2, TTL)).toEqual(keys("x"));
    expect(await cluster.acquireWebhookLeases("a", [], NOW + 3, TTL)).toEqual(keys("y"));
  });

  it("deletes leases that ran out a TTL ago (a dead node's, of webhooks since deleted), once a minute", async () => {
    await cluster.acquireWebhookLeases("dead", [w("gone")], NOW, TTL);
    await cluster.acquireWebhookLeases("a", [w("x")], NOW + 70_000, TTL);
    const { rows } = await sql<{ name: string }>`SELECT name FROM ${sql.table(WEBHOOK_LEASES_TABLE)}`.execute(store.db);
    expect(rows.map((r) => r.name)).toEqual(["x"]);
  });

  it("takes many leases in one call", async () => {
    const many = Array.from({ length: 1_200 }, (_, i) => ({ table: `t${i % 7}`, name: `w${i}` }));
    const held = await cluster.acquireWebhookLeases("a", many, NOW, TTL);
    expect(held.size).toBe(1_200);
    await cluster.releaseWebhookLeases("a", held);
    expect(await cluster.acquireWebhookLeases("a", [], NOW, TTL)).toEqual(new Set());
  });
});
