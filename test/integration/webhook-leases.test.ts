/**
 * Two nodes on one database, each with its own pool, engine and webhook registry, sharing a webhook through
 * leases in tablemq_webhook_leases (real clock, short TTL, a recording transport instead of HTTP).
 */
import { afterEach, beforeEach, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { resolveOptions } from "../../src/options.js";
import { MysqlClusterStore } from "../../src/store/mysql/cluster.js";
import { createMysqlStore, type MysqlStore } from "../../src/store/mysql/store.js";
import { WebhookRegistry } from "../../src/webhooks/registry.js";
import type { WebhookRequest, WebhookResponse } from "../../src/webhooks/transport.js";
import type { WebhookPostBody } from "../../src/wire.js";
import { describeWithDatabase, useOwnDatabase } from "../support/database.js";
import { sleep, waitUntil } from "../support/wait.js";

const T = "orders";
const TTL = 1_500; // renewed every 500 ms

interface Node {
  name: string;
  store: MysqlStore;
  engine: Engine;
  registry: WebhookRegistry;
  closed: boolean;
}

describeWithDatabase("webhook leases on the database", () => {
  const database = useOwnDatabase("webhook_leases");
  const posts: Array<{ node: string; ids: string[] }> = [];
  let nodes: Node[] = [];

  async function start(name: string): Promise<Node> {
    const store = createMysqlStore(database.url, { connectionLimit: 4 });
    const engine = new Engine({ store, schemaRefreshMs: 200 });
    await engine.open();
    const transport = async (req: WebhookRequest): Promise<WebhookResponse> => {
      posts.push({ node: name, ids: (JSON.parse(req.body) as WebhookPostBody).messages.map((m) => m.id) });
      return { status: 200, text: "" };
    };
    const registry = new WebhookRegistry({
      engine,
      store,
      transport,
      leases: { store: new MysqlClusterStore(store.db), owner: name, ttlMs: TTL },
    });
    await registry.open();
    const node = { name, store, engine, registry, closed: false };
    nodes.push(node);
    return node;
  }

  beforeEach(async () => {
    posts.length = 0;
    const admin = createMysqlStore(database.url, { connectionLimit: 1 });
    try {
      await admin.createTable(T, resolveOptions({ ackWaitMs: 2_000, pollIntervalMs: 200 }));
    } finally {
      await admin.close();
    }
  });

  afterEach(async () => {
    for (const node of nodes.reverse()) {
      if (!node.closed) await node.registry.close();
      await node.engine.close();
    }
    await nodes[0]?.store.dropTable(T);
    await nodes[0]?.store.deleteWebhooksOfMissingTables(T);
    for (const node of nodes) await node.store.close();
    nodes = [];
  });

  const driverOf = async (node: Node) => (await node.registry.get(T, "hook")).driver;
  const drivers = async (of: Node[]) => (await Promise.all(of.map(driverOf))).filter((d) => d === "this").length;
  const enqueue = async (node: Node, count: number) =>
    (await (await node.engine.table(T)).enqueue(Array.from({ length: count }, (_, i) => ({ payload: JSON.stringify({ i }) })))).ids;

  it("has exactly one node drive a webhook; the other takes over only after a crashed driver's lease ran out", async () => {
    const a = await start("a");
    const b = await start("b");
    await a.registry.put(T, "hook", { url: "http://127.0.0.1:9/hook" });
    await b.registry.reloadConfigs(); // as the bus would say
    const nodes = [a, b];
    for (let i = 0; i < 10; i++) {
      expect(await drivers(nodes)).toBe(1);
      await sleep(100);
    }
    const driver = (await driverOf(a)) === "this" ? a : b;
    const other = driver === a ? b : a;
    expect(await driverOf(other)).toBe("other");
    const first = await enqueue(other, 5);
    await waitUntil(() => posts.flatMap((p) => p.ids).length >= 5, "the messages POSTed");
    expect(new Set(posts.map((p) => p.node))).toEqual(new Set([driver.name]));
    expect(posts.flatMap((p) => p.ids).sort()).toEqual([...first].sort());

    // The driver crashes: it renews nothing more and releases nothing.
    await driver.registry.close({ releaseLeases: false });
    driver.closed = true;
    const crashedAt = Date.now();
    await sleep(300);
    expect(await driverOf(other)).toBe("other"); // its lease has most of its TTL left
    await waitUntil(async () => (await driverOf(other)) === "this", "the other node driving the webhook", 10_000);
    expect(Date.now() - crashedAt).toBeGreaterThanOrEqual(TTL - 500 - 100); // not before the lease ran out
    const second = await enqueue(other, 3);
    await waitUntil(() => second.every((id) => posts.some((p) => p.ids.includes(id))), "the new messages POSTed");
    expect(posts.filter((p) => p.ids.some((id) => second.includes(id))).map((p) => p.node)).toEqual([other.name]);
  });

  it("drives every webhook of three nodes from exactly one of them, and hands a closing node's over", async () => {
    const all = [await start("a"), await start("b"), await start("c")];
    const names = ["w1", "w2", "w3", "w4", "w5"];
    for (const [i, name] of names.entries()) await all[i % 3]!.registry.put(T, name, { url: `http://127.0.0.1:9/${name}` });
    for (const node of all) await node.registry.reloadConfigs();
    const driving = async (of: Node[]) => {
      const counts = new Map(names.map((n) => [n, 0]));
      for (const node of of) {
        for (const w of await node.registry.list(T)) if (w.driver === "this") counts.set(w.name, counts.get(w.name)! + 1);
      }
      return [...counts.values()];
    };
    for (let i = 0; i < 5; i++) {
      expect(await driving(all)).toEqual(names.map(() => 1));
      await sleep(100);
    }
    const [first, ...rest] = all;
    await first!.registry.close(); // releases its leases: the others take them at their next round
    first!.closed = true;
    await waitUntil(async () => (await driving(rest)).every((n) => n === 1), "every webhook driven by a remaining node", 5_000);
  });
});
