/**
 * Webhooks shared by several nodes: two registries (two nodes) on one Engine over the in-memory store, with
 * webhook leases in the in-memory cluster store, fake time and fake transports. Exactly one node drives a
 * webhook; a node that dies or cannot renew gives it up to the other after the lease's TTL.
 */
import { afterEach, describe, expect, it } from "vitest";
import { Engine } from "../../../src/engine/engine.js";
import { WebhookRegistry } from "../../../src/webhooks/registry.js";
import type { WebhookRequest, WebhookResponse } from "../../../src/webhooks/transport.js";
import type { WebhookPostBody } from "../../../src/wire.js";
import { FakeClock, settle } from "../../support/fake-clock.js";
import { MemoryClusterStore, type MemoryClusterConnection } from "../../support/memory-cluster-store.js";
import { MemoryStore } from "../../support/memory-store.js";

const T = "orders";
const URL_A = "http://127.0.0.1:9/hook";
const URL_B = "http://127.0.0.1:9/moved";
const TTL = 3_000; // renewed every 1 s; given up 2.25 s after the last renewal that got through

interface Post {
  node: string;
  at: number;
  url: string;
  ids: string[];
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

async function cluster() {
  const clock = new FakeClock();
  const store = new MemoryStore();
  const leaseStore = new MemoryClusterStore();
  const engine = new Engine({ store, clock, random: () => 0.5, schemaRefreshMs: 60_000 });
  await engine.open();
  await engine.ensureTable(T, { ackWaitMs: 5_000, pollIntervalMs: 500, batchSize: 10 });
  closers.push(() => engine.close());
  const posts: Post[] = [];
  const answers = new Map<string, () => number>();

  const node = async (owner: string) => {
    const connection: MemoryClusterConnection = leaseStore.connect();
    const transport = async (req: WebhookRequest): Promise<WebhookResponse> => {
      const body = JSON.parse(req.body) as WebhookPostBody;
      posts.push({ node: owner, at: clock.now(), url: req.url, ids: body.messages.map((m) => m.id) });
      return { status: answers.get(owner)?.() ?? 200, text: "" };
    };
    const registry = new WebhookRegistry({
      engine,
      store,
      clock,
      retry: { minDelayMs: 1_000, maxDelayMs: 1_000 },
      transport,
      leases: { store: connection, owner, ttlMs: TTL },
    });
    await registry.open();
    let closed = false;
    const close = async (releaseLeases = true) => {
      if (closed) return;
      closed = true;
      await registry.close({ releaseLeases });
    };
    closers.push(() => close());
    return { registry, connection, close };
  };

  const receivers = async () => (await (await engine.table(T)).describe()).stats.receivers;
  const enqueue = async (count: number) =>
    (await (await engine.table(T)).enqueue(Array.from({ length: count }, (_, i) => ({ payload: JSON.stringify({ n: i }) })))).ids;
  return { clock, store, leaseStore, engine, posts, answers, node, receivers, enqueue };
}

describe("webhook leases", () => {
  it("drives each webhook from exactly one node; every node shows it, saying which drives it", async () => {
    const { clock, posts, node, receivers, enqueue, leaseStore } = await cluster();
    const a = await node("a");
    const b = await node("b");
    const { webhook } = await a.registry.put(T, "w", { url: URL_A });
    expect(webhook.driver).toBe("this");
    expect(leaseStore.holder(T, "w", clock.now())).toBe("a");
    await clock.advance(1_000); // b's next round reads the configuration
    expect(await b.registry.get(T, "w")).toMatchObject({ url: URL_A, driver: "other", state: "up", held: 0 });
    expect(b.registry.summaries(T)).toEqual([expect.objectContaining({ name: "w", driver: "other" })]);
    expect(await a.registry.list(T)).toEqual([expect.objectContaining({ name: "w", driver: "this" })]);
    expect(await receivers()).toBe(1);
    const ids = await enqueue(3);
    await clock.advance(5_000);
    expect(posts.map((p) => p.node)).toEqual(["a"]);
    expect(posts.flatMap((p) => p.ids)).toEqual(ids);
    expect(await receivers()).toBe(1);
  });

  it("leaves a dead node's webhook alone until its lease ran out, then takes it", async () => {
    const { clock, posts, node, receivers, enqueue, leaseStore } = await cluster();
    const a = await node("a");
    await a.registry.put(T, "w", { url: URL_A });
    const b = await node("b");
    const lastRenewal = clock.now();
    await a.close(false); // a crashes: it renews nothing more and releases nothing
    expect(leaseStore.holder(T, "w", clock.now())).toBe("a");
    await clock.advance(TTL - 1);
    expect((await b.registry.get(T, "w")).driver).toBe("other");
    expect(await receivers()).toBe(0);
    await clock.advance(1_000); // b's round after the lease ran out
    expect(clock.now()).toBeGreaterThanOrEqual(lastRenewal + TTL);
    expect((await b.registry.get(T, "w")).driver).toBe("this");
    expect(leaseStore.holder(T, "w", clock.now())).toBe("b");
    expect(await receivers()).toBe(1);
    await enqueue(1);
    await clock.advance(10);
    expect(posts.map((p) => p.node)).toEqual(["b"]);
  });

  it("hands its webhooks over at once when it closes (releasing its leases)", async () => {
    const { clock, node, receivers, leaseStore } = await cluster();
    const a = await node("a");
    await a.registry.put(T, "w", { url: URL_A });
    const b = await node("b");
    await a.close();
    expect(leaseStore.leases.size).toBe(0);
    await clock.advance(1_000);
    expect((await b.registry.get(T, "w")).driver).toBe("this");
    expect(await receivers()).toBe(1);
  });

  it("stops driving before its lease runs out when it cannot renew, and the other node takes over after it", async () => {
    const { clock, posts, answers, node, receivers, enqueue, store } = await cluster();
    const a = await node("a");
    await a.registry.put(T, "w", { url: URL_A });
    const b = await node("b");
    answers.set("a", () => 503); // a holds what it gets
    const ids = await enqueue(2);
    await clock.advance(10);
    expect((await a.registry.get(T, "w")).held).toBe(2);
    const lastRenewal = clock.now() - 10;
    a.connection.down = true; // a cannot reach the database; b can
    const seen: number[] = [];
    for (let t = 0; t < TTL + 1_000; t += 250) {
      await clock.advance(250);
      seen.push(await receivers());
      const now = clock.now();
      if (now < lastRenewal + TTL * 0.75) expect((await a.registry.get(T, "w")).driver).toBe("this");
      if (now >= lastRenewal + TTL * 0.75) expect((await a.registry.get(T, "w")).driver).toBe("other");
      if (now < lastRenewal + TTL) expect((await b.registry.get(T, "w")).driver).toBe("other");
    }
    expect(Math.max(...seen)).toBe(1); // never two at once
    expect(seen.at(-1)).toBe(1);
    expect((await b.registry.get(T, "w")).driver).toBe("this");
    // a handed its held messages back when it let go; b POSTed them.
    expect(posts.filter((p) => p.node === "b").flatMap((p) => p.ids)).toEqual(ids);
    for (const id of ids) expect(store.row(T, id)!.timeAcked).not.toBeNull();
    a.connection.down = false;
    await clock.advance(2_000);
    expect((await a.registry.get(T, "w")).driver).toBe("other"); // b holds it now
    expect(await receivers()).toBe(1);
  });

  it("does not count on a renewal that hung past its lease", async () => {
    const { clock, node, receivers } = await cluster();
    const a = await node("a");
    await a.registry.put(T, "w", { url: URL_A });
    const b = await node("b");
    const release = a.connection.hold();
    await clock.advance(TTL + 1_000);
    expect((await a.registry.get(T, "w")).driver).toBe("other");
    expect((await b.registry.get(T, "w")).driver).toBe("this");
    release(); // a's round finishes late: b holds the lease anyway, and a starts nothing
    await clock.advance(10);
    expect(await receivers()).toBe(1);
    await clock.advance(2_000);
    expect((await a.registry.get(T, "w")).driver).toBe("other");
    expect(await receivers()).toBe(1);
  });

  it("stops driving a webhook another node deleted, and releases its lease", async () => {
    const { clock, node, receivers, leaseStore } = await cluster();
    const a = await node("a");
    await a.registry.put(T, "w", { url: URL_A });
    const b = await node("b");
    await b.registry.remove(T, "w");
    expect(await receivers()).toBe(1); // a has not heard yet
    await clock.advance(1_000);
    expect(await receivers()).toBe(0);
    expect(leaseStore.leases.size).toBe(0);
    await expect(a.registry.get(T, "w")).rejects.toMatchObject({ code: "webhook_not_found" });
  });

  it("applies another node's change at once on reloadConfigs()", async () => {
    const { clock, posts, node, enqueue } = await cluster();
    const a = await node("a");
    await a.registry.put(T, "w", { url: URL_A });
    const b = await node("b");
    await b.registry.put(T, "w", { url: URL_B, batchSize: 1 });
    await a.registry.reloadConfigs();
    expect(await a.registry.get(T, "w")).toMatchObject({ url: URL_B, batchSize: 1, driver: "this" });
    await enqueue(2);
    await clock.advance(10);
    expect(posts.map((p) => [p.node, p.url, p.ids.length])).toEqual([
      ["a", URL_B, 1],
      ["a", URL_B, 1],
    ]);
  });

  it("picks up a webhook another node created within a round, or at once on reloadConfigs()", async () => {
    const { clock, node } = await cluster();
    const a = await node("a");
    const b = await node("b");
    const c = await node("c");
    await a.registry.put(T, "w", { url: URL_A });
    await b.registry.reloadConfigs();
    expect(await b.registry.get(T, "w")).toMatchObject({ url: URL_A, driver: "other" });
    await expect(c.registry.get(T, "w")).rejects.toMatchObject({ code: "webhook_not_found" });
    await clock.advance(1_000);
    expect(await c.registry.get(T, "w")).toMatchObject({ url: URL_A, driver: "other" });
  });

  it("releases the lease of a webhook whose table was dropped", async () => {
    const { clock, node, engine, leaseStore } = await cluster();
    const a = await node("a");
    await a.registry.put(T, "w", { url: URL_A });
    expect(leaseStore.holder(T, "w", clock.now())).toBe("a");
    await engine.dropTable(T);
    await settle();
    await clock.advance(1_000);
    expect(leaseStore.leases.size).toBe(0);
  });
});

describe("webhook registry on a single node", () => {
  it("shows no driver without leases", async () => {
    const clock = new FakeClock();
    const store = new MemoryStore();
    const engine = new Engine({ store, clock, random: () => 0.5, schemaRefreshMs: 60_000 });
    await engine.open();
    await engine.ensureTable(T, {});
    const registry = new WebhookRegistry({ engine, store, clock, transport: async () => ({ status: 200, text: "" }) });
    await registry.open();
    closers.push(async () => {
      await registry.close();
      await engine.close();
    });
    const { webhook } = await registry.put(T, "w", { url: URL_A });
    expect(webhook).not.toHaveProperty("driver");
    expect(registry.summaries(T)[0]).not.toHaveProperty("driver");
    await registry.reloadConfigs(); // harmless: nothing changed
    expect((await (await engine.table(T)).describe()).stats.receivers).toBe(1);
  });
});
