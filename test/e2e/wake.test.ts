/**
 * POST /v1/tables/{table}/wake end to end (a real server and MariaDB): a row written into the table by
 * someone other than the server, as the application's own transaction or another node would, is delivered
 * once the writer wakes the table, not at the next poll. The table polls every 60 s, so a wake that does
 * nothing fails the test.
 */
import { describe, expect, it } from "vitest";
import type { Scope } from "../../src/server/config.js";
import { describeWithDatabase, uniqueTableName } from "../support/database.js";
import { http, useServerDatabase, useTestServer } from "../support/server.js";
import { sleep, waitUntil } from "../support/wait.js";

const OPTIONS = { ackWaitMs: 30_000, pollIntervalMs: 60_000 };
/** Much less than the table's poll interval. */
const ON_TIME_MS = 2_000;

describeWithDatabase("wake", () => {
  const t = useTestServer("wake_e2e");
  const conn = useServerDatabase(t);

  it("delivers a row another writer inserted when it wakes the table, not at the next poll", async () => {
    const table = uniqueTableName("wake");
    expect((await http(t.base, "PUT", `/v1/tables/${table}`, OPTIONS)).status).toBe(201);
    const polls = () => t.server.engine.snapshot(table)!.stats.polls;
    const sub = await t.subscribe(table);
    await waitUntil(() => polls() >= 1, "the first subscriber's poll");
    await sleep(200); // a poll asked for while that one ran is over too
    const before = polls();

    // time_next defaults to 0: due now, as a writer that is not this server would leave it.
    await conn.pool.query(`INSERT INTO ${table} (id, message) VALUES (42, '{"by":"someone else"}')`);
    await sleep(1_000);
    expect(sub.messages).toEqual([]); // the server does not know of the row
    expect(polls()).toBe(before);

    const woken = Date.now();
    const res = await http(t.base, "POST", `/v1/tables/${table}/wake`);
    expect(res.status).toBe(204);
    expect(res.body).toBeUndefined();
    const [m] = await sub.waitForMessages(1, ON_TIME_MS);
    expect(Date.now() - woken).toBeLessThan(ON_TIME_MS);
    expect(m).toMatchObject({ id: "42", epoch: 0, payload: { by: "someone else" } });
    expect(polls()).toBeGreaterThan(before);
  });

  it("answers 204 when nobody subscribes to the table (no poll runs then)", async () => {
    const table = uniqueTableName("wake");
    expect((await http(t.base, "PUT", `/v1/tables/${table}`, OPTIONS)).status).toBe(201);
    expect((await http(t.base, "POST", `/v1/tables/${table}/wake`)).status).toBe(204);
  });

  it.each([
    ["a due time that is not a number", { dueAt: ["soon"] }, /^dueAt\[0\] must be number/],
    ["an id that is not a message id", { forget: ["x"] }, /^forget\[0\] must match pattern/],
    ["an id past 2^64 - 1", { forget: ["18446744073709551616"] }, /^forget\[0\]: must be a decimal string/],
    ["more than 1000 ids", { forget: Array(1001).fill("1") }, /^forget must NOT have more than 1000 items/],
    ["an unknown field", { ids: ["1"] }, /^body: unknown field "ids"/],
  ])("refuses a body with %s: 400 naming the field", async (_what, body, message) => {
    const table = uniqueTableName("wake");
    expect((await http(t.base, "PUT", `/v1/tables/${table}`, OPTIONS)).status).toBe(201);
    const res = await http(t.base, "POST", `/v1/tables/${table}/wake`, body);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("validation_failed");
    expect(res.body.error.message).toMatch(message);
  });

  it("takes the due times of delayed rows written elsewhere: each is delivered then, not at the next poll", async () => {
    const table = uniqueTableName("wake");
    expect((await http(t.base, "PUT", `/v1/tables/${table}`, OPTIONS)).status).toBe(201);
    const sub = await t.subscribe(table);
    const dueAt = Date.now() + 1_500;
    await conn.pool.query(`INSERT INTO ${table} (id, time_next, message) VALUES (43, ?, '"later"')`, [String(BigInt(dueAt) * 1_000_000n)]);
    expect((await http(t.base, "POST", `/v1/tables/${table}/wake`, { dueAt: [dueAt] })).status).toBe(204);
    const [m] = await sub.waitForMessages(1, 1_500 + ON_TIME_MS);
    expect(Date.now()).toBeGreaterThanOrEqual(dueAt);
    expect(m).toMatchObject({ id: "43", payload: "later" });
  });

  it("answers 404 table_not_found for an unknown table", async () => {
    const res = await http(t.base, "POST", `/v1/tables/${uniqueTableName("missing")}/wake`);
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe("table_not_found");
  });
});

describeWithDatabase("wake with tokens", () => {
  const TOKENS = { publisher: "wake-publisher-token", consumer: "wake-consumer-token" } as const;
  const GRANTS: Record<string, Record<string, Scope[]>> = {
    [TOKENS.publisher]: { "*": ["publish"] },
    [TOKENS.consumer]: { "*": ["consume", "admin"] },
  };
  const t = useTestServer("wake_auth_e2e", { authTokens: GRANTS });

  const wake = async (table: string, token?: string) => {
    const res = await fetch(`${t.base}/v1/tables/${table}/wake`, {
      method: "POST",
      headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    });
    const text = await res.text();
    return { status: res.status, body: text === "" ? undefined : JSON.parse(text) };
  };

  describe("POST /v1/tables/{table}/wake", () => {
    it("needs the publish scope on the table", async () => {
      const table = uniqueTableName("wake");
      const created = await fetch(`${t.base}/v1/tables/${table}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${TOKENS.consumer}` },
      });
      expect(created.status).toBe(201);
      expect((await wake(table)).status).toBe(401);
      const refused = await wake(table, TOKENS.consumer); // consume and admin, not publish
      expect(refused.status).toBe(403);
      expect(refused.body.error.code).toBe("forbidden");
      expect(refused.body.error.message).toContain("publish");
      expect((await wake(table, TOKENS.publisher)).status).toBe(204);
    });
  });
});
