/**
 * Issue 30 end to end (a real server and MariaDB, the default 30 s poll interval): messages are delivered when
 * they fall due, not at the next poll, and acked rows are purged when they pass purgeAfterMs. The due time of
 * a redelivery or a postpone (jittered backoff) is read from the row itself. How late a delivery is, is
 * measured by the bench (`due-times`: p50, p99, max); here "on time" means before a poll could have found
 * it: these waited ~30 s before the fix.
 */
import { expect, it } from "vitest";
import { describeWithDatabase, uniqueTableName } from "../support/database.js";
import { http, type TestSubscriber, useServerDatabase, useTestServer } from "../support/server.js";
import { waitUntil } from "../support/wait.js";

/** Much less than the 30 s poll interval these tables keep. */
const ON_TIME_MS = 1_000;
const OPTIONS = { ackWaitMs: 1_000, minBackoffMs: 500, maxBackoffMs: 2_000, purgeAfterMs: 2_000 };

describeWithDatabase("due times end to end", () => {
  const t = useTestServer("due_times_e2e");
  const conn = useServerDatabase(t);

  const newTable = async () => {
    const table = uniqueTableName("due");
    expect((await http(t.base, "PUT", `/v1/tables/${table}`, OPTIONS)).status).toBe(201);
    return table;
  };
  /** When each (id, epoch) arrived, by the test's clock. */
  const arrivals = (sub: TestSubscriber) => {
    const at = new Map<string, number>();
    sub.socket.on("message", (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.type === "messages") for (const m of frame.messages) at.set(`${m.id}:${m.epoch}`, Date.now());
    });
    return at;
  };
  /** The row's time_next, ms. */
  const dueOf = async (table: string, id: string): Promise<number> => {
    const [rows] = await conn.pool.query(`SELECT time_next FROM ${table} WHERE id = ?`, [id]);
    return Number(BigInt((rows as Array<{ time_next: string | number }>)[0]!.time_next) / 1_000_000n);
  };

  it("delivers a 2 s delay enqueued with nobody subscribed at its time", async () => {
    const table = await newTable();
    const sent = Date.now();
    const { body } = await http(t.base, "POST", `/v1/tables/${table}/messages`, { messages: [{ payload: 1, delayMs: 2_000 }] });
    await new Promise((r) => setTimeout(r, 300));
    const sub = await t.subscribe(table);
    const at = arrivals(sub);
    await waitUntil(() => at.has(`${body.ids[0]}:0`), "the delayed message", 2_000 + ON_TIME_MS);
    const late = at.get(`${body.ids[0]}:0`)! - (sent + 2_000);
    expect(late).toBeGreaterThanOrEqual(-5);
    expect(late).toBeLessThan(ON_TIME_MS);
    sub.send({ type: "ack", ids: body.ids });
  });

  it("redelivers an unacked message after the ack wait plus backoff, and a postponed one after its backoff", async () => {
    const table = await newTable();
    const { body } = await http(t.base, "POST", `/v1/tables/${table}/messages`, { messages: [{ payload: "a" }, { payload: "b" }] });
    const [a, b] = body.ids as [string, string];
    const sub = await t.subscribe(table);
    const at = arrivals(sub);
    await sub.waitForMessages(2);
    // a: left unacked, due again at the row's time_next (ack wait + backoff from its send).
    await waitUntil(async () => (await dueOf(table, a)) > Date.now(), "a's delivery to be recorded");
    const aDue = await dueOf(table, a);
    // b: postponed without a delay: due after the backoff of its epoch, from now.
    expect((await http(t.base, "POST", `/v1/tables/${table}/postpone`, { ids: [b] })).body).toEqual({ postponed: 1 });
    const bDue = await dueOf(table, b);
    await waitUntil(() => at.has(`${a}:1`) && at.has(`${b}:1`), "both redelivered", 5_000);
    for (const [id, due] of [
      [a, aDue],
      [b, bDue],
    ] as const) {
      const late = at.get(`${id}:1`)! - due;
      expect(late, id).toBeGreaterThanOrEqual(-5);
      expect(late, id).toBeLessThan(ON_TIME_MS);
    }
    sub.send({ type: "ack", ids: [a, b] });
  });

  it("purges acked rows when they pass purgeAfterMs", async () => {
    const table = await newTable();
    const { body } = await http(t.base, "POST", `/v1/tables/${table}/messages`, { messages: [{ payload: 1 }, { payload: 2 }] });
    const acked = Date.now();
    expect((await http(t.base, "POST", `/v1/tables/${table}/ack`, { ids: body.ids })).body).toEqual({ acked: 2 });
    const count = async () => {
      const [rows] = await conn.pool.query(`SELECT COUNT(*) AS n FROM ${table}`);
      return Number((rows as Array<{ n: number }>)[0]!.n);
    };
    await waitUntil(async () => (await count()) === 0, "the purge", OPTIONS.purgeAfterMs + ON_TIME_MS);
    expect(Date.now() - acked).toBeGreaterThanOrEqual(OPTIONS.purgeAfterMs);
  });

  it("counts in flight only the messages handed to a subscriber, not those waiting for its credit", async () => {
    const table = await newTable();
    const sub = await t.subscribe(table, "?maxInFlight=1");
    for (const payload of [1, 2, 3]) await http(t.base, "POST", `/v1/tables/${table}/messages`, { messages: [{ payload }] });
    await sub.waitForMessages(1);
    await new Promise((r) => setTimeout(r, 200));
    expect(sub.messages).toHaveLength(1);
    const { body } = await http(t.base, "GET", `/v1/tables/${table}`);
    expect(body.stats).toMatchObject({ inFlight: 1, ready: 2 });
    sub.close();
  });
});
