import { sql } from "kysely";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/server.js";
import { createMysqlStore, type MysqlStore } from "../../src/store/mysql/store.js";
import { describeWithDatabase, uniqueTableName, useOwnDatabase } from "../support/database.js";
import { http, type HttpResult, startTestServer, TestSubscriber } from "../support/server.js";
import { lockTable, waitForLockWait } from "../support/table-lock.js";
import { TcpProxy } from "../support/tcp-proxy.js";
import { sleep, waitUntil } from "../support/wait.js";

/** The server's TABLEMQ_DB_STATEMENT_TIMEOUT_MS here. */
const STATEMENT_TIMEOUT_MS = 1_000;
const TABLE_OPTIONS = { ackWaitMs: 1000, minBackoffMs: 500, maxBackoffMs: 1000, pollIntervalMs: 200 };
const POOL_SIZE = 8;

describeWithDatabase("database outage", () => {
  const database = useOwnDatabase("outage_e2e");
  let proxy: TcpProxy;
  let server: RunningServer;
  let judge: MysqlStore; // straight to the database, not through the proxy

  beforeAll(async () => {
    const target = new URL(database.url);
    proxy = await TcpProxy.start(target.hostname, Number(target.port || 3306));
    const viaProxy = new URL(database.url);
    viaProxy.port = String(proxy.port);
    server = await startTestServer(viaProxy.toString(), { dbPoolSize: POOL_SIZE, dbStatementTimeoutMs: STATEMENT_TIMEOUT_MS });
    judge = createMysqlStore(database.url, { connectionLimit: 2 });
  });
  afterAll(async () => {
    proxy?.restore();
    await server?.close();
    await proxy?.close();
    await judge?.close();
  });

  // Each test's table is dropped after it, so earlier tables' purges (every 200 ms) do not compete for the
  // pool with the statements a test watches.
  afterEach(async () => {
    proxy.restore();
    for (const table of server.engine.tableNames()) await http(server.url, "DELETE", `/v1/tables/${table}`);
  });

  const idsIn = async (table: string): Promise<string[]> => {
    const { rows } = await sql<{ id: string }>`SELECT id FROM ${sql.table(table)} ORDER BY id`.execute(judge.db);
    return rows.map((r) => String(r.id));
  };

  it("answers 503 from enqueue and /readyz while the database is cut off, writes nothing, and recovers", async () => {
    const table = uniqueTableName("outage");
    expect((await http(server.url, "PUT", `/v1/tables/${table}`, { ackWaitMs: 1000, pollIntervalMs: 200 })).status).toBe(201);
    const sub = new TestSubscriber(server.url, table, "", { autoAck: true });
    await sub.opened;
    const before = await http(server.url, "POST", `/v1/tables/${table}/messages`, { messages: [{ payload: "before" }] });
    expect(before.status).toBe(201);
    await sub.waitForMessages(1);

    proxy.cut();
    const during = await http(server.url, "POST", `/v1/tables/${table}/messages`, { messages: [{ id: "777", payload: "during" }] });
    expect(during.status).toBe(503);
    expect(during.body.error.code).toBe("unavailable");
    const ready = await http(server.url, "GET", "/readyz");
    expect(ready.status).toBe(503);
    expect(ready.body.error.message).toMatch(/database/);
    expect((await http(server.url, "GET", "/healthz")).status).toBe(200);

    proxy.restore();
    await waitUntil(async () => (await http(server.url, "GET", "/readyz")).status === 200, "readyz to recover", 5_000);
    const after = await http(server.url, "POST", `/v1/tables/${table}/messages`, { messages: [{ payload: "after" }] });
    expect(after.status).toBe(201);
    await sub.waitForMessages(2, 5_000);
    expect(sub.messages.map((m) => m.payload)).toEqual(["before", "after"]);
    // Nothing was written by the refused request: its id is unknown to the table.
    expect((await http(server.url, "POST", `/v1/tables/${table}/ack`, { ids: ["777"] })).body).toEqual({ acked: 0 });
    sub.close();
  });

  it("answers 504 outcome_unknown with the ids, not 503, when the connection is lost after the INSERT was sent and it commits", async () => {
    const table = uniqueTableName("lost");
    expect((await http(server.url, "PUT", `/v1/tables/${table}`, TABLE_OPTIONS)).status).toBe(201);
    // The INSERT reaches the database and waits there for the lock; its connection is cut; the lock goes
    // while the database still runs it (MariaDB drops a lock wait ~1 s after its client left), so it
    // commits; the proxy refuses new connections until after the answer.
    const lock = await lockTable(database.url, table);
    let locked = true;
    let answeredAfterMs: number;
    try {
      const pending = http(server.url, "POST", `/v1/tables/${table}/messages`, { messages: [{ id: "888", payload: "locked" }] });
      await waitForLockWait(judge.db, table);
      proxy.cut();
      const cutAt = Date.now();
      await sleep(100);
      await lock.release();
      locked = false;
      const res = await pending;
      answeredAfterMs = Date.now() - cutAt;
      expect(res.status, JSON.stringify(res.body)).toBe(504);
      expect(res.body.error.code).toBe("outcome_unknown");
      expect(res.body.ids).toEqual(["888"]);
    } finally {
      if (locked) await lock.release();
      proxy.restore();
    }
    // "Nothing was written" would have been false: the row is there.
    expect(await idsIn(table)).toEqual(["888"]);
    // It was sent again on new connections (all refused) for the statement timeout, then answered.
    expect(answeredAfterMs).toBeGreaterThanOrEqual(STATEMENT_TIMEOUT_MS);
    expect(answeredAfterMs).toBeLessThan(3 * STATEMENT_TIMEOUT_MS);
  });

  it("sends an INSERT whose answer was lost again on a new connection, and answers 201 once that settles it", async () => {
    const table = uniqueTableName("retry");
    expect((await http(server.url, "PUT", `/v1/tables/${table}`, TABLE_OPTIONS)).status).toBe(201);
    const sub = new TestSubscriber(server.url, table, "", { autoAck: true });
    await sub.opened;
    const lock = await lockTable(database.url, table);
    let locked = true;
    let res: HttpResult | undefined;
    try {
      const pending = http(server.url, "POST", `/v1/tables/${table}/messages`, { messages: [{ payload: "server-made id" }] });
      await waitForLockWait(judge.db, table);
      proxy.cut();
      await sleep(100);
      proxy.restore();
      await lock.release(); // the first INSERT commits (its client left under 1 s ago), then the retry runs
      locked = false;
      res = await pending;
    } finally {
      if (locked) await lock.release();
      proxy.restore();
    }
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.ids).toHaveLength(1);
    // The retry found the row the first INSERT wrote; the server made that id, so it is this request's
    // message, not a duplicate.
    expect(res.body.duplicates).toBeUndefined();
    expect(await idsIn(table)).toEqual(res.body.ids);
    await sub.waitForMessages(1, 8_000); // delivered by the poller
    expect(sub.ids).toEqual(res.body.ids);
    sub.close();
  });

  it("answers within its statement timeout while the database hangs, counts the failed polls, and recovers", async () => {
    const table = uniqueTableName("hung");
    expect((await http(server.url, "PUT", `/v1/tables/${table}`, TABLE_OPTIONS)).status).toBe(201);
    const sub = new TestSubscriber(server.url, table, "", { autoAck: true });
    await sub.opened;
    expect((await http(server.url, "POST", `/v1/tables/${table}/messages`, { messages: [{ payload: "before" }] })).status).toBe(201);
    await sub.waitForMessages(1);
    const pollsFailedBefore = server.engine.snapshot(table)!.stats.pollFailed;

    // The documented bound: a turn to write, a try, retries for as long, and the last try.
    const bound = 4 * STATEMENT_TIMEOUT_MS + 500;
    // Open connections to spare first: the enqueue and the ack must be *sent* (on a pooled connection) to
    // be in doubt; one that finds no connection was never sent and gets 503, which is another test's case.
    await Promise.all(Array.from({ length: POOL_SIZE }, () => http(server.url, "GET", `/v1/tables/${table}`)));
    proxy.hang();
    try {
      const started = Date.now();
      const [enqueue, ack] = await Promise.all([
        http(server.url, "POST", `/v1/tables/${table}/messages`, { messages: [{ id: "999", payload: "during" }] }, undefined, bound),
        http(server.url, "POST", `/v1/tables/${table}/ack`, { ids: ["1"] }, undefined, bound),
      ]);
      expect(Date.now() - started).toBeLessThan(bound);
      // Sent, never answered: maybe written, so not 503. With the ids to resend.
      expect(enqueue.status, JSON.stringify(enqueue.body)).toBe(504);
      expect(enqueue.body).toMatchObject({ error: { code: "outcome_unknown" }, ids: ["999"] });
      expect(ack.status, JSON.stringify(ack.body)).toBe(504);
      expect(ack.body).toMatchObject({ error: { code: "outcome_unknown" }, ids: ["1"] });
      expect((await http(server.url, "GET", "/readyz")).status).toBe(503);
      // Polls time out too, and are counted, instead of hanging until the database answers.
      await waitUntil(() => server.engine.snapshot(table)!.stats.pollFailed > pollsFailedBefore, "a poll to fail", bound);
    } finally {
      proxy.restore();
    }
    await waitUntil(async () => (await http(server.url, "GET", "/readyz")).status === 200, "readyz to recover", 5_000);
    const after = await http(server.url, "POST", `/v1/tables/${table}/messages`, { messages: [{ payload: "after" }] });
    expect(after.status).toBe(201);
    await waitUntil(() => sub.messages.some((m) => m.payload === "after"), "delivery to resume", 5_000);
    sub.close();
  });

  it("reports a hung database as not ready within the ping timeout", async () => {
    proxy.hang();
    try {
      const started = Date.now();
      const ready = await http(server.url, "GET", "/readyz");
      expect(ready.status).toBe(503);
      expect(Date.now() - started).toBeLessThan(4_000);
    } finally {
      proxy.restore();
    }
    await waitUntil(async () => (await http(server.url, "GET", "/readyz")).status === 200, "readyz to recover", 5_000);
  });
});
