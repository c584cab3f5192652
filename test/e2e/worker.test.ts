/**
 * Issue 31's worker API, on a real server and MariaDB with real sockets: the fail operation (HTTP, socket
 * frame, `msg.fail()`), awaitable acks, and `client.work` with its concurrency, retry policy, Unrecoverable,
 * lease extension, abort signals, and the typed queue handle.
 */
import { expect, it } from "vitest";
import { TablemqClient } from "../../src/client/client.js";
import { type Message, Unrecoverable } from "../../src/client/index.js";
import { describeWithDatabase, uniqueTableName } from "../support/database.js";
import { http, useServerDatabase, useTestServer } from "../support/server.js";
import { sleep, waitUntil } from "../support/wait.js";

describeWithDatabase("fail and the worker API", () => {
  const t = useTestServer("worker");
  const conn = useServerDatabase(t);
  const client = () => new TablemqClient({ url: t.base });

  async function table(options: Record<string, number> = {}) {
    const name = uniqueTableName("w");
    await client().createTable(name, { ackWaitMs: 2_000, minBackoffMs: 2_000, ...options });
    return name;
  }

  async function rowOf(table: string, id: string): Promise<{ epoch: number; acked: boolean } | undefined> {
    const [rows] = await conn.pool.query(`SELECT epoch, time_acked FROM ${table} WHERE id = ?`, [id]);
    const row = (rows as Array<{ epoch: number; time_acked: unknown }>)[0];
    return row && { epoch: Number(row.epoch), acked: row.time_acked !== null };
  }

  it("POST /fail dead-letters by id or receipt with the reason given; stale receipts change nothing", async () => {
    const name = await table();
    const { ids } = await client().publish(name, [{ payload: 1 }, { payload: 2 }, { payload: 3 }]);
    const sub = await t.subscribe(name);
    const delivered = await sub.waitForMessages(3);
    const receiptOf = (id: string) => delivered.find((m) => m.id === id)!.receipt;

    const byId = await http(t.base, "POST", `/v1/tables/${name}/fail`, { ids: [ids[0]], reason: "bad payload" });
    expect(byId).toMatchObject({ status: 200, body: { failed: 1 } });
    const stale = `${ids[1]}:7`;
    const byReceipt = await http(t.base, "POST", `/v1/tables/${name}/fail`, { receipts: [receiptOf(ids[1]!), stale] });
    expect(byReceipt).toMatchObject({ status: 200, body: { failed: 1, stale: [stale] } });
    expect(await http(t.base, "POST", `/v1/tables/${name}/fail`, { ids: [ids[0]] })).toMatchObject({ body: { failed: 0 } });

    const dead = (await http(t.base, "GET", `/v1/tables/${name}/dead`)).body.messages;
    expect(dead.map((m: { id: string; reason: string }) => [m.id, m.reason]).sort()).toEqual(
      [
        [ids[0], "bad payload"],
        [ids[1], "failed by a consumer"],
      ].sort(),
    );
    expect(await rowOf(name, ids[2]!)).toMatchObject({ acked: false }); // untouched
    expect((await client().describeTable(name)).stats).toMatchObject({ dead: 2, inFlight: 1 });
  });

  it("refuses a bad fail with a 400 naming the field, and changes nothing", async () => {
    const name = await table();
    const { ids } = await client().publish(name, [{ payload: 1 }]);
    const long = await http(t.base, "POST", `/v1/tables/${name}/fail`, { ids, reason: "x".repeat(1025) });
    expect(long.status).toBe(400);
    expect(long.body.error.message).toMatch(/reason/);
    const neither = await http(t.base, "POST", `/v1/tables/${name}/fail`, { reason: "why" });
    expect(neither.status).toBe(400);
    expect(neither.body.error.message).toMatch(/ids/);
    expect((await http(t.base, "POST", `/v1/tables/nope_${name}/fail`, { ids })).status).toBe(404);
    const longName = uniqueTableName("w").padEnd(62, "x"); // no room for "_dlq": nowhere to fail to
    await client().createTable(longName);
    const [long2] = (await client().publish(longName, [{ payload: 1 }])).ids;
    const nowhere = await http(t.base, "POST", `/v1/tables/${longName}/fail`, { ids: [long2] });
    expect(nowhere.status).toBe(409);
    expect(nowhere.body.error.message).toMatch(/dead-letter table/);
    await client().dropTable(longName);
    expect((await client().describeTable(name)).stats).toMatchObject({ ready: 1, dead: 0 });
  });

  it("fails over the socket: a fail frame with a ref is answered with a failed frame", async () => {
    const name = await table();
    const { ids } = await client().publish(name, [{ payload: 1 }]);
    const sub = await t.subscribe(name);
    const [m] = await sub.waitForMessages(1);
    sub.send({ type: "fail", receipts: [m!.receipt], reason: "no such customer", ref: "f1" });
    await waitUntil(() => sub.frames.some((f) => f.type === "failed"), "the failed frame");
    expect(sub.frames.find((f) => f.type === "failed")).toEqual({ type: "failed", ref: "f1", failed: 1, stale: [] });
    expect(await rowOf(name, ids[0]!)).toBeUndefined();
    sub.send({ type: "fail", receipts: [m!.receipt], reason: "y".repeat(1025), ref: "f2" });
    await waitUntil(() => sub.errors().length > 0, "an error frame");
    expect(sub.errors()[0]).toMatchObject({ code: "bad_request", message: expect.stringMatching(/reason/) });
  });

  it("msg.fail() dead-letters at once on a table that would retry forever; msg.ack({ confirm: true }) resolves once committed", async () => {
    const name = await table();
    const { ids } = await client().publish(name, [{ payload: "bad" }, { payload: "good" }]);
    const sub = client().subscribe(name);
    const results: Record<string, boolean> = {};
    for await (const msg of sub) {
      if (msg.payload === "bad") results.failed = await msg.fail("cannot parse");
      else results.acked = await msg.ack({ confirm: true });
      if (Object.keys(results).length === 2) break;
    }
    expect(results).toEqual({ failed: true, acked: true });
    expect(await rowOf(name, ids[0]!)).toBeUndefined();
    expect(await rowOf(name, ids[1]!)).toMatchObject({ acked: true }); // committed before the promise resolved
    const dead = (await http(t.base, "GET", `/v1/tables/${name}/dead`)).body.messages;
    expect(dead).toMatchObject([{ id: ids[0], reason: "cannot parse", epoch: 1 }]);
  });

  it("a fenced confirmed ack and a fail of a delivery that is no longer current resolve false and change nothing", async () => {
    const name = await table({ ackWaitMs: 300, minBackoffMs: 100 });
    const { ids } = await client().publish(name, [{ payload: 1 }, { payload: 2 }]);
    const slow = client().subscribe(name, { fenced: true, maxInFlight: 2 });
    const held: Message[] = [];
    for await (const msg of slow) {
      held.push(msg);
      if (held.length === 2) break; // closes: releases nothing it iterated
    }
    // Both leases run out; another consumer takes them.
    const other = await t.subscribe(name);
    await other.waitForMessages(2, 5_000);
    const late = new TablemqClient({ url: t.base });
    const sub2 = late.subscribe(name, { fenced: true });
    expect(await held[0]!.ack({ confirm: true })).toBe(false); // over HTTP: the subscription has ended
    expect(await held[1]!.fail("too late")).toBe(false);
    await sub2.close();
    expect(await rowOf(name, ids[0]!)).toMatchObject({ acked: false });
    expect(await rowOf(name, ids[1]!)).toBeDefined();
  });

  it("work() runs `concurrency` handlers at once and acks each that resolves", async () => {
    const name = await table();
    await client().publish(
      name,
      Array.from({ length: 12 }, (_, i) => ({ payload: i })),
    );
    let running = 0;
    let most = 0;
    const seen: number[] = [];
    const worker = client().work<number>(
      name,
      async (msg) => {
        running++;
        most = Math.max(most, running);
        await sleep(30);
        seen.push(msg.payload);
        running--;
      },
      { concurrency: 3 },
    );
    await waitUntil(() => seen.length === 12, "12 messages handled");
    await worker.close();
    expect(most).toBe(3);
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect((await client().describeTable(name)).stats).toMatchObject({ acked: 12, ready: 0, inFlight: 0 });
  });

  it("a handler that throws is retried after the retry policy's delay; one that throws Unrecoverable is dead-lettered at once", async () => {
    const name = await table({ ackWaitMs: 10_000, minBackoffMs: 10_000, maxAttempts: 0 });
    const { ids } = await client().publish(name, [{ payload: "flaky" }, { payload: "poison" }]);
    const attempts: Array<{ payload: string; epoch: number; at: number }> = [];
    const errors: string[] = [];
    const retries: Array<[number, string]> = [];
    const worker = client().work<string>(
      name,
      async (msg) => {
        attempts.push({ payload: msg.payload, epoch: msg.epoch, at: Date.now() });
        if (msg.payload === "poison") throw new Unrecoverable("schema v1 is not supported");
        if (msg.epoch === 0) throw new Error("upstream timed out");
      },
      {
        concurrency: 2,
        retry: (epoch, err) => {
          retries.push([epoch, err.message]);
          return 300;
        },
        onError: (err) => errors.push(err.message),
      },
    );
    await waitUntil(async () => (await rowOf(name, ids[0]!))?.acked === true, "the flaky message acked on its second try");
    await worker.close();
    const flaky = attempts.filter((a) => a.payload === "flaky");
    expect(flaky.map((a) => a.epoch)).toEqual([0, 1]);
    expect(flaky[1]!.at - flaky[0]!.at).toBeGreaterThanOrEqual(290); // the policy's 300 ms, not the table's 10 s
    expect(retries).toEqual([[0, "upstream timed out"]]);
    expect(errors).toEqual(["upstream timed out"]); // reported; Unrecoverable is a decision, not an error
    expect(attempts.filter((a) => a.payload === "poison")).toHaveLength(1);
    const dead = (await http(t.base, "GET", `/v1/tables/${name}/dead`)).body.messages;
    expect(dead).toMatchObject([{ id: ids[1], reason: "schema v1 is not supported" }]);
  });

  it("extends leases while a handler outlives the ack wait (on by default): no second delivery", async () => {
    const name = await table({ ackWaitMs: 400, minBackoffMs: 100 });
    const { ids } = await client().publish(name, [{ payload: 1 }]);
    let calls = 0;
    const worker = client().work(name, async () => {
      calls++;
      await sleep(1_500);
    });
    const watcher = await t.subscribe(name); // would get the message if its lease lapsed
    await waitUntil(async () => (await rowOf(name, ids[0]!))?.acked === true, "acked after the long handler", 5_000);
    await worker.close();
    expect(calls).toBe(1);
    expect(watcher.ids).toEqual([]);
  });

  it("close({ timeoutMs }) aborts a handler's signal and hands its message back; options.signal closes the worker", async () => {
    const name = await table({ ackWaitMs: 30_000, minBackoffMs: 30_000 });
    const { ids } = await client().publish(name, [{ payload: 1 }]);
    let aborted = false;
    const worker = client().work(name, (_msg, { signal }) => {
      return new Promise<void>((_resolve, reject) => {
        signal.addEventListener("abort", () => {
          aborted = true;
          reject(signal.reason);
        });
      });
    });
    await waitUntil(() => worker.busy === 1, "the handler running");
    await worker.close({ timeoutMs: 200 });
    expect(aborted).toBe(true);
    await worker.done();
    // Released: due now, not after the 30 s ack wait, and the delivery the aborted handler had is uncounted.
    const again = await t.subscribe(name);
    await again.waitForMessages(1, 3_000);
    expect(again.ids).toEqual([ids[0]]);
    expect(again.messages[0]!.epoch).toBe(0);

    const stop = new AbortController();
    const second = client().work(name, () => undefined, { signal: stop.signal });
    stop.abort();
    await second.done();
    expect(second.subscription.closed).toBe(true);
  });

  it("queue<T>() is a typed handle: publish and work on one table", async () => {
    const name = await table();
    interface Order {
      sku: string;
      qty: number;
    }
    const orders = client().queue<Order>(name);
    await orders.publish([{ payload: { sku: "a", qty: 2 } }]);
    const got: Order[] = [];
    const worker = orders.work(async (msg) => {
      got.push(msg.payload);
    });
    await waitUntil(() => got.length === 1, "the order handled");
    await worker.close();
    expect(got).toEqual([{ sku: "a", qty: 2 }]);
    expect((await orders.describe()).stats.acked).toBe(1);
  });

  it("refuses bad worker options with a TablemqError naming the option", () => {
    const c = client();
    expect(() => c.work("t", () => undefined, { concurrency: 0 })).toThrow(/concurrency/);
    expect(() => c.work("t", () => undefined, { concurrency: 4, prefetch: 2 })).toThrow(/prefetch/);
    expect(() => c.work("t", "nope" as never)).toThrow(/handler/);
  });
});
