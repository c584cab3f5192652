/**
 * One conformance suite for both ways in (issue 26): the same requests sent over HTTP and through
 * `tablemq/sql` must write the same rows (ids given, priority, due time, payload text, epoch) and report the
 * same duplicates; and a request one refuses, the other refuses with the same code and message, writing
 * nothing. The server is real (sockets, MariaDB); the application's pool has mysql2's default settings.
 */
import { createPool, type Pool } from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nsToMs } from "../../src/model/backoff.js";
import { MAX_EPOCH_MS } from "../../src/model/limits.js";
import { ack, enqueue, postpone, type SqlMessage } from "../../src/sql/index.js";
import { describeWithDatabase, uniqueTableName } from "../support/database.js";
import { http, useTestServer } from "../support/server.js";

type Path = "http" | "sql";
const PATHS: Path[] = ["http", "sql"];
const MAX_PAYLOAD = 1024;

describeWithDatabase("enqueue, ack and postpone: HTTP and tablemq/sql alike", () => {
  const t = useTestServer("sql_conformance_e2e", { maxPayloadBytes: MAX_PAYLOAD, maxBatch: 50 });
  let pool: Pool;
  beforeAll(() => {
    pool = createPool({ uri: t.databaseUrl, connectionLimit: 2 });
  });
  afterAll(() => pool?.end());
  const limits = { maxPayloadBytes: MAX_PAYLOAD, maxBatch: 50 };

  const newTable = async () => {
    const table = uniqueTableName("conf");
    expect((await http(t.base, "PUT", `/v1/tables/${table}`, { ackWaitMs: 30_000, pollIntervalMs: 60_000 })).status).toBe(201);
    return table;
  };
  type Outcome = { ids: string[]; duplicates: string[] } | { error: { code: string; message: string } };
  /** The request over one path: its answer, or its error as code and message. */
  const send = async (path: Path, table: string, messages: unknown[]): Promise<Outcome> => {
    if (path === "http") {
      const res = await http(t.base, "POST", `/v1/tables/${table}/messages`, { messages });
      if (res.status !== 201) return { error: res.body.error };
      return { ids: res.body.ids, duplicates: res.body.duplicates ?? [] };
    }
    try {
      const r = await enqueue(pool, table, messages as SqlMessage[], limits);
      return { ids: r.ids, duplicates: r.duplicates };
    } catch (err) {
      const e = err as { code: string; message: string };
      return { error: { code: e.code, message: e.message } };
    }
  };
  const rowsOf = async (table: string) =>
    (
      (await pool.query(
        `SELECT CAST(id AS CHAR) AS id, priority, epoch, CAST(time_next AS CHAR) AS next, time_acked, CAST(message AS CHAR) AS message FROM ${table} ORDER BY id`,
      )) as [Array<{ id: string; priority: number; epoch: number; next: string; time_acked: unknown; message: string }>, unknown]
    )[0];

  it("writes the same rows and reports the same duplicates", async () => {
    const deliverAt = Date.now() + 3_600_000;
    const messages = [
      { payload: { a: 1, b: [true, null, "x"] }, priority: 7 },
      { payload: "later", delayMs: 60_000 },
      { payload: [1, 2.5, -3e-7], deliverAt },
      { payload: null, id: "18446744073709551615" },
      { payload: { unicode: "€ 😀 \u00e9" }, priority: 0 },
    ];
    const seen: Record<Path, Awaited<ReturnType<typeof rowsOf>>> = { http: [], sql: [] };
    for (const path of PATHS) {
      const table = await newTable();
      const before = Date.now();
      const first = await send(path, table, messages);
      const after = Date.now();
      expect(first).toMatchObject({ duplicates: [] });
      if (!("ids" in first)) throw new Error(JSON.stringify(first));
      expect(first.ids).toHaveLength(messages.length);
      expect(first.ids[3]).toBe("18446744073709551615");
      // The given id again, beside a new message: reported as a duplicate, the new one written.
      const again = await send(path, table, [{ payload: "dup", id: "18446744073709551615" }, { payload: "new" }]);
      expect(again).toMatchObject({ duplicates: ["18446744073709551615"] });

      const rows = await rowsOf(table);
      expect(rows).toHaveLength(messages.length + 1);
      const byId = new Map(rows.map((r) => [r.id, r]));
      const [r0, r1, r2, r3, r4] = first.ids.map((id) => byId.get(id)!);
      const ms = (r: { next: string }) => nsToMs(r.next); // as the server reads them back
      expect(ms(r0!)).toBeGreaterThanOrEqual(before - 1);
      expect(ms(r0!)).toBeLessThanOrEqual(after);
      expect(ms(r1!)).toBeGreaterThanOrEqual(before + 60_000 - 1);
      expect(ms(r1!)).toBeLessThanOrEqual(after + 60_000);
      expect(ms(r2!)).toBe(deliverAt);
      expect(r3!.message).toBe("null");
      expect(r4!.priority).toBe(0);
      seen[path] = [r0!, r1!, r2!, r3!, r4!];
    }
    // Row for row the same, but for the ids the server made and the due times of "now".
    const shape = (r: (typeof seen)["http"][number], i: number) => ({
      priority: r.priority,
      epoch: r.epoch,
      acked: r.time_acked,
      message: r.message,
      ...(i === 2 ? { next: r.next } : {}),
    });
    expect(seen.sql.map(shape)).toEqual(seen.http.map(shape));
    expect(seen.sql.map((r) => JSON.parse(r.message))).toEqual(messages.map((m) => m.payload));
  });

  const nested = (depth: number): unknown => (depth === 0 ? 1 : [nested(depth - 1)]);
  const REFUSED: Array<[string, unknown[]]> = [
    ["no messages", []],
    ["a priority above 255", [{ payload: 1, priority: 256 }]],
    ["a fractional priority", [{ payload: 1, priority: 1.5 }]],
    ["a negative delay", [{ payload: 1, delayMs: -1 }]],
    ["a delay and a due time", [{ payload: 1, delayMs: 5, deliverAt: 5 }]],
    ["a due time too late", [{ payload: 1, deliverAt: MAX_EPOCH_MS + 1 }]],
    ["an id with a leading zero", [{ payload: 1, id: "01" }]],
    ["an id past 2^64 - 1", [{ payload: 1, id: "18446744073709551616" }]],
    ["an unknown field", [{ payload: 1, delay: 5 }]],
    ["no payload", [{ priority: 1 }]],
    ["a payload nested 40 deep", [{ payload: nested(40) }]],
    ["a payload with a lone surrogate", [{ payload: "\ud800" }]],
    ["a payload over the limit", [{ payload: "x".repeat(MAX_PAYLOAD) }]],
    ["more messages than the batch limit", Array.from({ length: 51 }, () => ({ payload: 1 }))],
    ["a good message beside a bad one", [{ payload: "good" }, { payload: 1, priority: -1 }]],
  ];
  describe("refuses the same requests with the same error, writing nothing", () => {
    it.each(REFUSED)("%s", async (_what, messages) => {
      const outcomes: Partial<Record<Path, Outcome>> = {};
      for (const path of PATHS) {
        const table = await newTable();
        outcomes[path] = await send(path, table, messages);
        expect(await rowsOf(table)).toEqual([]);
      }
      expect(outcomes.http).toHaveProperty("error");
      expect(outcomes.sql).toEqual(outcomes.http);
    });
  });

  it("acks and postpones with the same answers and the same refusals", async () => {
    const table = await newTable();
    const { ids } = (await send("http", table, [{ payload: 1 }, { payload: 2 }, { payload: 3 }])) as { ids: string[] };
    const viaHttp = async (op: string, body: unknown) => {
      const res = await http(t.base, "POST", `/v1/tables/${table}/${op}`, body);
      return res.status === 200 ? res.body : { error: res.body.error };
    };
    const viaSql = async (op: "ack" | "postpone", body: Record<string, unknown>) => {
      try {
        const r = op === "ack" ? await ack(pool, table, body, limits) : await postpone(pool, table, body, limits);
        const { table: _t, wake: _w, ...answer } = r;
        return answer;
      } catch (err) {
        const e = err as { code: string; message: string };
        return { error: { code: e.code, message: e.message } };
      }
    };
    expect(await viaSql("postpone", { ids: [ids[0]], delayMs: 1_000 })).toEqual(
      await viaHttp("postpone", { ids: [ids[1]], delayMs: 1_000 }),
    );
    expect(await viaSql("ack", { ids: [ids[0]] })).toEqual(await viaHttp("ack", { ids: [ids[1]] }));
    expect(await viaSql("ack", { ids: [ids[0]] })).toEqual({ acked: 0 }); // acked before: not counted
    for (const body of [
      {},
      { ids: [] },
      { ids: ["x"] },
      { ids: ["18446744073709551616"] },
      { receipts: ["nope"] },
      { ids: [ids[2]], delayMs: -5 },
      { ids: [ids[2]], extra: 1 },
      { ids: Array.from({ length: 51 }, (_, i) => String(i)) },
    ]) {
      for (const op of ["ack", "postpone"] as const) {
        if (op === "ack" && "delayMs" in body) continue;
        const answer = await viaHttp(op, body);
        expect(answer, `${op} ${JSON.stringify(body)}`).toHaveProperty("error");
        expect(await viaSql(op, body), `${op} ${JSON.stringify(body)}`).toEqual(answer);
      }
    }
    expect((await rowsOf(table)).find((r) => r.id === ids[2])).toMatchObject({ epoch: 0, time_acked: null });
  });

  it("gives a generated id another application already took a new one, instead of reporting it as a duplicate", async () => {
    const table = await newTable();
    // This process's id node, from an id it made; then every id it could make in the next half second taken.
    const { ids: first } = (await send("sql", table, [{ payload: "first" }])) as { ids: string[] };
    const node = (BigInt(first[0]!) >> 12n) & 1023n;
    const ms = BigInt(first[0]!) >> 22n;
    const taken: string[] = [];
    for (let m = ms; m < ms + 500n; m++) for (let seq = 0n; seq < 4n; seq++) taken.push(String((m << 22n) | (node << 12n) | seq));
    await pool.query(`INSERT IGNORE INTO ${table} (id, message) VALUES ${taken.map((id) => `(${id}, '"theirs"')`).join(",")}`);
    const outcome = await send("sql", table, [{ payload: "mine" }, { payload: "mine too" }]);
    expect(outcome).toMatchObject({ duplicates: [] });
    const ids = (outcome as { ids: string[] }).ids;
    const byId = new Map((await rowsOf(table)).map((r) => [r.id, r.message]));
    expect(ids.map((id) => byId.get(id))).toEqual(['"mine"', '"mine too"']);
    expect(ids.map((id) => (BigInt(id) >> 12n) & 1023n)).not.toContain(node); // drawn again
  });
});
