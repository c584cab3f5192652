/**
 * `tablemq/sql` end to end (issue 26): messages enqueued, acked and postponed inside the application's own
 * transaction, on a Kysely transaction and on a mysql2 connection, against two real server processes on one
 * MariaDB database with the Redis bus. Tables poll every 60 s unless a test says otherwise, so a wake that
 * does not arrive shows as a wait of a minute, not as a pass. The application's connections are mysql2's
 * defaults (BIGINTs read as numbers), not the server's.
 */
import { Kysely, MysqlDialect, sql } from "kysely";
import { createPool as createCallbackPool } from "mysql2";
import { createConnection, createPool, type Connection, type Pool } from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ack, enqueue, HttpNotifier, postpone, RedisNotifier, type SqlExecutor } from "../../src/sql/index.js";
import { kyselyOf } from "../../src/sql/executor.js";
import { spawnServer, type ServerProcess } from "../support/child.js";
import { describeWithDatabase, uniqueTableName, useOwnDatabase } from "../support/database.js";
import { redisAnswers, REDIS_URL } from "../support/redis.js";
import { http, TestSubscriber } from "../support/server.js";
import { sleep, waitUntil } from "../support/wait.js";

const SLOW_POLL = { ackWaitMs: 30_000, pollIntervalMs: 60_000 };
/** Much less than a poll interval of 60 s. */
const ON_TIME_MS = 2_000;

describeWithDatabase("tablemq/sql: the application's own transaction", () => {
  const database = useOwnDatabase("sql_e2e");
  const nodes: ServerProcess[] = [];
  const subscribers: TestSubscriber[] = [];
  let haveRedis = false;
  let pool: Pool;
  let kysely: Kysely<any>;
  let conn: Connection;

  beforeAll(async () => {
    haveRedis = await redisAnswers();
    const env: Record<string, string> = { TABLEMQ_DATABASE_URL: database.url, TABLEMQ_DB_POOL_SIZE: "4" };
    if (haveRedis) env.TABLEMQ_REDIS_URL = REDIS_URL;
    nodes.push(...(await Promise.all([spawnServer(env), spawnServer(env)])));
    if (haveRedis) {
      await waitUntil(
        async () =>
          (await Promise.all(nodes.map(async (n) => (await http(n.url, "GET", "/v1/nodes")).body?.nodes ?? []))).every(
            (l: Array<{ redis: boolean }>) => l.length === 2 && l.every((x) => x.redis),
          ),
        "both nodes on the bus",
        20_000,
      );
    }
    // The application's connections: mysql2's defaults.
    pool = createPool({ uri: database.url, connectionLimit: 4 });
    kysely = new Kysely<any>({ dialect: new MysqlDialect({ pool: createCallbackPool({ uri: database.url, connectionLimit: 4 }) }) });
    conn = await createConnection({ uri: database.url });
    await pool.query("CREATE TABLE orders (id INT PRIMARY KEY, status VARCHAR(20) NOT NULL)");
  }, 60_000);

  afterAll(async () => {
    for (const s of subscribers) s.close();
    await kysely?.destroy();
    await pool?.end();
    await conn?.end();
    for (const n of nodes) n.child.kill("SIGTERM");
    await Promise.all(nodes.map((n) => n.exited));
    for (const n of nodes) if (n.stderr()) process.stderr.write(`[sql e2e] node ${n.url} said: ${n.stderr()}\n`);
  });

  const a = () => nodes[0]!.url;
  const b = () => nodes[1]!.url;
  const newTable = async (prefix: string, options: Record<string, number> = SLOW_POLL) => {
    const table = uniqueTableName(prefix);
    expect((await http(a(), "PUT", `/v1/tables/${table}`, options)).status).toBe(201);
    // The other node serves it too (the bus tells it at once; without Redis, its schema refresh does).
    await waitUntil(async () => (await http(b(), "GET", `/v1/tables/${table}`)).status === 200, "the table on node B", 15_000);
    return table;
  };
  const subscribe = async (base: string, table: string, query = "") => {
    const s = new TestSubscriber(base, table, query);
    subscribers.push(s);
    await s.opened;
    await waitUntil(() => s.frames.some((f) => f.type === "subscribed"), "the subscribed frame");
    return s;
  };
  const rows = async (table: string) =>
    (await pool.query(`SELECT CAST(id AS CHAR) AS id, time_acked FROM ${table}`))[0] as Array<{ id: string; time_acked: unknown }>;
  const orderStatus = async (id: number) =>
    ((await pool.query("SELECT status FROM orders WHERE id = ?", [id]))[0] as Array<{ status: string }>)[0]?.status;

  class Rollback extends Error {}
  /** Runs `work` in a transaction on the executor of `kind`; commits, or rolls back when `work` throws. */
  const EXECUTORS = {
    kysely: async <T>(work: (on: SqlExecutor) => Promise<T>) => kysely.transaction().execute((trx) => work(trx)),
    mysql2: async <T>(work: (on: SqlExecutor) => Promise<T>) => {
      await conn.beginTransaction();
      try {
        const result = await work(conn);
        await conn.commit();
        return result;
      } catch (err) {
        await conn.rollback();
        throw err;
      }
    },
  };
  let nextOrder = 1;

  for (const [kind, inTransaction] of Object.entries(EXECUTORS)) {
    describe(`on a ${kind} transaction`, () => {
      it("commits the message with the business row; a notify to node A wakes a subscriber on node B at once", async (ctx) => {
        if (!haveRedis) return ctx.skip();
        const table = await newTable("sql_commit");
        const sub = await subscribe(b(), table);
        const order = nextOrder++;
        const sent = await inTransaction(async (on) => {
          await sql`INSERT INTO orders (id, status) VALUES (${order}, 'placed')`.execute(kyselyOf(on));
          return enqueue(on, table, [{ payload: { order, big: 12345678901234567890n.toString() }, priority: 7 }]);
        });
        const notified = Date.now();
        expect(await new HttpNotifier({ url: a() }).notify(sent)).toBe(true);
        const [m] = await sub.waitForMessages(1, ON_TIME_MS);
        expect(Date.now() - notified).toBeLessThan(ON_TIME_MS);
        expect(m).toMatchObject({ id: sent.ids[0], priority: 7, payload: { order, big: "12345678901234567890" } });
        expect(await orderStatus(order)).toBe("placed");
      });

      it("rolled back: neither the business row nor the message exists, and nothing is delivered", async () => {
        const table = await newTable("sql_rollback", { ackWaitMs: 1_000, pollIntervalMs: 500 });
        const sub = await subscribe(a(), table);
        const order = nextOrder++;
        let sent: Awaited<ReturnType<typeof enqueue>> | undefined;
        await expect(
          inTransaction(async (on) => {
            await sql`INSERT INTO orders (id, status) VALUES (${order}, 'placed')`.execute(kyselyOf(on));
            sent = await enqueue(on, table, [{ payload: { order } }]);
            throw new Rollback("the order failed");
          }),
        ).rejects.toBeInstanceOf(Rollback);
        await new HttpNotifier({ url: a() }).notify(sent!); // a careless application notifies anyway
        await sleep(3_000); // six polls and three ack waits
        expect(sub.messages).toEqual([]);
        expect(await rows(table)).toEqual([]);
        expect(await orderStatus(order)).toBeUndefined();
      });

      it("without a notify, the poll delivers it at the table's poll interval", async () => {
        const table = await newTable("sql_poll", { ackWaitMs: 30_000, pollIntervalMs: 2_000 });
        const sub = await subscribe(a(), table);
        const sent = await inTransaction((on) => enqueue(on, table, [{ payload: "polled" }]));
        const [m] = await sub.waitForMessages(1, 2_000 + ON_TIME_MS);
        expect(m).toMatchObject({ id: sent.ids[0], payload: "polled" });
      });

      it("acks in the transaction of a business update: after a rollback it is delivered again, after a commit never", async () => {
        const table = await newTable("sql_ack", { ackWaitMs: 1_500, pollIntervalMs: 60_000 });
        const sub = await subscribe(a(), table);
        const order = nextOrder++;
        await pool.query("INSERT INTO orders (id, status) VALUES (?, 'placed')", [order]);
        const sent = await inTransaction((on) => enqueue(on, table, [{ payload: { order } }]));
        await new HttpNotifier({ url: a() }).notify(sent);
        const [first] = await sub.waitForMessages(1, ON_TIME_MS);

        await expect(
          inTransaction(async (on) => {
            await sql`UPDATE orders SET status = 'shipped' WHERE id = ${order}`.execute(kyselyOf(on));
            expect(await ack(on, table, { receipts: [first!.receipt] })).toMatchObject({ acked: 1, stale: [] });
            throw new Rollback("shipping failed");
          }),
        ).rejects.toBeInstanceOf(Rollback);
        expect(await orderStatus(order)).toBe("placed");
        // After the ack wait and its backoff (at most 1.5 s + 2 s from the claim), and slack for a loaded
        // machine: it missed 4.5 s once in the full suite, with the browser tests beside it.
        const redelivered = await sub.waitForMessages(2, 1_500 + 6_000);
        expect(redelivered[1]).toMatchObject({ id: first!.id, epoch: 1 });

        // The first delivery's receipt is stale now: it changes nothing, in or out of a transaction.
        expect(await ack(pool, table, { receipts: [first!.receipt] })).toMatchObject({ acked: 0, stale: [first!.receipt] });
        const acked = await inTransaction(async (on) => {
          await sql`UPDATE orders SET status = 'shipped' WHERE id = ${order}`.execute(kyselyOf(on));
          return ack(on, table, { receipts: [redelivered[1]!.receipt] });
        });
        expect(acked).toMatchObject({ acked: 1, stale: [], wake: { forget: [first!.id] } });
        await new HttpNotifier({ url: a() }).notify(acked);
        await sleep(1_500 + 3_000);
        expect(sub.messages).toHaveLength(2);
        expect(await orderStatus(order)).toBe("shipped");
        expect((await rows(table))[0]!.time_acked).not.toBeNull();
      });
    });
  }

  it("a transaction whose connection dies before its commit leaves neither the business row nor the message", async () => {
    const table = await newTable("sql_killed", { ackWaitMs: 1_000, pollIntervalMs: 500 });
    const sub = await subscribe(a(), table);
    const doomed = await createConnection({ uri: database.url });
    const order = nextOrder++;
    await doomed.beginTransaction();
    await doomed.query("INSERT INTO orders (id, status) VALUES (?, 'placed')", [order]);
    const sent = await enqueue(doomed, table, [{ payload: { order } }]);
    doomed.destroy(); // no COMMIT: the database rolls the transaction back
    await new HttpNotifier({ url: a() }).notify(sent);
    await sleep(2_000);
    expect(sub.messages).toEqual([]);
    expect(await rows(table)).toEqual([]);
    expect(await orderStatus(order)).toBeUndefined();
  });

  it("over Redis: every node hears the wake; delayed messages get their timers", async (ctx) => {
    if (!haveRedis) return ctx.skip();
    const table = await newTable("sql_redis");
    const sub = await subscribe(b(), table);
    const notifier = new RedisNotifier({ redis: REDIS_URL, database: new URL(database.url).pathname.slice(1) });
    try {
      const sent = await enqueue(pool, table, [{ payload: "now" }, { payload: "later", delayMs: 1_500 }]);
      const notified = Date.now();
      expect(await notifier.notify(sent)).toBe(true);
      await sub.waitForMessages(1, ON_TIME_MS);
      expect(Date.now() - notified).toBeLessThan(ON_TIME_MS);
      const both = await sub.waitForMessages(2, 1_500 + ON_TIME_MS);
      expect(both.map((m) => m.payload)).toEqual(["now", "later"]);
      expect(Date.now() - notified).toBeGreaterThanOrEqual(1_500);
    } finally {
      await notifier.close();
    }
  });

  it("postpones by id: due again after delayMs (a timer from the notify), not after the ack wait", async () => {
    const table = await newTable("sql_postpone");
    const sub = await subscribe(a(), table);
    const sent = await enqueue(pool, table, [{ payload: "again" }]);
    await new HttpNotifier({ url: a() }).notify(sent);
    await sub.waitForMessages(1, ON_TIME_MS);
    const postponed = await postpone(conn, table, { ids: sent.ids, delayMs: 1_000 });
    expect(postponed).toMatchObject({ postponed: 1, wake: { forget: sent.ids } });
    expect(postponed.wake.dueAt).toHaveLength(1);
    await new HttpNotifier({ url: a() }).notify(postponed);
    const again = await sub.waitForMessages(2, 1_000 + ON_TIME_MS);
    expect(again[1]).toMatchObject({ id: sent.ids[0], epoch: 1 });
  });
});
