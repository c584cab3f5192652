/**
 * Several nodes on one database (issue 25), end to end: three real server processes on one MariaDB
 * database and the Redis bus. Each message is delivered once per ack wait whichever node its subscribers
 * are on (claims), rows committed on one node reach subscribers on another at once (bus), and tables
 * created on one node are served by the others at once. Tables poll every 60 s, so a missed wake-up
 * shows as a delay of a minute, not as a pass.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { spawnServer, type ServerProcess } from "../support/child.js";
import { describeWithDatabase, uniqueTableName, useOwnDatabase } from "../support/database.js";
import { redisAnswers, REDIS_URL } from "../support/redis.js";
import { sleep, waitUntil } from "../support/wait.js";
import { Consumer, type Delivery, percentile, request } from "../faults/support.js";

const OPTIONS = { ackWaitMs: 30_000, pollIntervalMs: 60_000, batchSize: 20 };

describeWithDatabase("several nodes on one database", () => {
  const database = useOwnDatabase("nodes_e2e");
  const nodes: ServerProcess[] = [];
  const consumers: Consumer[] = [];
  let haveRedis = false;

  beforeAll(async () => {
    haveRedis = await redisAnswers();
    if (!haveRedis) return;
    const env = { TABLEMQ_DATABASE_URL: database.url, TABLEMQ_REDIS_URL: REDIS_URL, TABLEMQ_DB_POOL_SIZE: "6" };
    nodes.push(...(await Promise.all([spawnServer(env), spawnServer(env), spawnServer(env)])));
    // Every node sees the other two (heartbeats every 2 s).
    const listed = async (n: ServerProcess) =>
      ((await request(n.url, "GET", "/v1/nodes")).body?.nodes ?? []) as Array<{ url: string | null }>;
    await waitUntil(
      async () => (await Promise.all(nodes.map(listed))).every((l) => l.length === 3 && l.every((n) => n.url !== null)),
      "three nodes, with their URLs, listed by each",
      20_000,
    );
  }, 60_000);

  afterAll(async () => {
    for (const c of consumers) c.close();
    for (const n of nodes) n.child.kill("SIGTERM");
    await Promise.all(nodes.map((n) => n.exited));
  });

  const url = (i: number) => nodes[i]!.url;
  const subscribe = async (node: number, table: string, name: string, log: Delivery[], confirmed: Set<string>, ackDelayMs = 0) => {
    const c = await new Consumer(url(node), table, name, { maxInFlight: 50, log, confirmed, ackDelayMs }).ready();
    consumers.push(c);
    return c;
  };
  /** Ids delivered more than once, and (id, epoch) pairs delivered more than once. */
  const duplicates = (log: Delivery[]) => {
    const byId = new Map<string, number>();
    const byDelivery = new Map<string, number>();
    for (const d of log) {
      byId.set(d.id, (byId.get(d.id) ?? 0) + 1);
      byDelivery.set(`${d.id}:${d.epoch}`, (byDelivery.get(`${d.id}:${d.epoch}`) ?? 0) + 1);
    }
    return { ids: [...byId].filter(([, n]) => n > 1).length, deliveries: [...byDelivery].filter(([, n]) => n > 1).length };
  };

  it("lists the nodes, says /readyz wake-ups come over the bus, and serves a table made on another node at once", async (ctx) => {
    if (!haveRedis) return ctx.skip();
    const listed = (await request(url(0), "GET", "/v1/nodes")).body as { nodes: Array<{ url: string; self: boolean; redis: boolean }> };
    expect(listed.nodes.map((n) => n.url).sort()).toEqual(nodes.map((n) => n.url).sort());
    expect(listed.nodes.filter((n) => n.self).map((n) => n.url)).toEqual([url(0)]);
    await waitUntil(
      async () => (await request(url(0), "GET", "/v1/nodes")).body.nodes.every((n: { redis: boolean }) => n.redis),
      "every node on the bus",
    );
    const ready = await request(url(1), "GET", "/readyz");
    expect(ready.status).toBe(200);
    expect(ready.body.cluster).toMatchObject({ nodes: 3, bus: { state: "up" }, wakeups: "bus" });

    const table = uniqueTableName("made_on_a");
    expect((await request(url(0), "PUT", `/v1/tables/${table}`, OPTIONS)).status).toBe(201);
    // Node C learns of it from the bus: well before its 10 s schema refresh.
    const started = Date.now();
    await waitUntil(async () => (await request(url(2), "GET", `/v1/tables/${table}`)).status === 200, "the table on node C", 5_000);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("delivers each of 1,000 messages enqueued with nobody subscribed once, to subscribers on two nodes", async (ctx) => {
    if (!haveRedis) return ctx.skip();
    const table = uniqueTableName("no_dup");
    expect((await request(url(0), "PUT", `/v1/tables/${table}`, OPTIONS)).status).toBe(201);
    for (let i = 0; i < 10; i++) {
      const res = await request(url(0), "POST", `/v1/tables/${table}/messages`, {
        messages: Array.from({ length: 100 }, (_, j) => ({ payload: { n: i * 100 + j } })),
      });
      expect(res.status).toBe(201);
    }
    const log: Delivery[] = [];
    const confirmed = new Set<string>();
    // Acks 50 ms after each batch: A's subscriber alone would take about a second, so both get some.
    await Promise.all([subscribe(0, table, "on-a", log, confirmed, 50), subscribe(1, table, "on-b", log, confirmed, 50)]);
    await waitUntil(() => confirmed.size === 1_000, "every message acked", 20_000);
    await sleep(300); // a duplicate would arrive about now
    expect(duplicates(log)).toEqual({ ids: 0, deliveries: 0 });
    expect(new Set(log.map((d) => d.by))).toEqual(new Set(["on-a", "on-b"])); // both nodes delivered some
  });

  it("producers on one node, subscribers on all three: every message once, none lost, and on time across nodes", async (ctx) => {
    if (!haveRedis) return ctx.skip();
    const table = uniqueTableName("spread");
    expect((await request(url(0), "PUT", `/v1/tables/${table}`, OPTIONS)).status).toBe(201);
    const log: Delivery[] = [];
    const confirmed = new Set<string>();
    // Slow consumers (50 ms per batch): A's own subscriber cannot take everything, and A tells B and C.
    await Promise.all([0, 1, 2].map((i) => subscribe(i, table, `node-${i}`, log, confirmed, 50)));
    const enqueuedAt = new Map<string, number>();
    const accepted: string[] = [];
    const deadline = Date.now() + 3_000;
    for (let i = 0; i < 150 && Date.now() < deadline; i++) {
      const at = Date.now();
      const res = await request(url(0), "POST", `/v1/tables/${table}/messages`, {
        messages: Array.from({ length: 20 }, (_, j) => ({ payload: { n: i * 20 + j } })),
      });
      expect(res.status).toBe(201);
      for (const id of res.body.ids as string[]) {
        accepted.push(id);
        enqueuedAt.set(id, at);
      }
      await sleep(10);
    }
    await waitUntil(() => accepted.every((id) => confirmed.has(id)), "every accepted message acked", 20_000);
    await sleep(300);
    expect(duplicates(log)).toEqual({ ids: 0, deliveries: 0 });
    expect(log.length).toBe(accepted.length);
    const remote = log.filter((d) => d.by !== "node-0");
    expect(remote.length).toBeGreaterThan(0); // the subscribers on B and C got some
    // Rows committed on A reach B and C through the bus, not the 60 s poll.
    const lags = remote.map((d) => d.at - enqueuedAt.get(d.id)!);
    expect(percentile(lags, 99)).toBeLessThan(2_000);
  }, 60_000);
});
