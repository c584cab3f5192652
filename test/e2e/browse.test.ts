/**
 * Browsing a table's unacked messages without delivering them (GET /v1/tables/{table}/messages[/{id}], the
 * client's browse and getMessage), on a real server and MariaDB: states, orders, pages, one by id, payloads
 * byte for byte, the 400s and 404s, and that a browse changes nothing a consumer could tell.
 */
import { expect, it } from "vitest";
import { TablemqClient } from "../../src/client/client.js";
import { TablemqError } from "../../src/client/index.js";
import { describeWithDatabase, uniqueTableName } from "../support/database.js";
import { http, useServerDatabase, useTestServer } from "../support/server.js";
import { waitUntil } from "../support/wait.js";

interface Browsed {
  id: string;
  priority: number;
  epoch: number;
  dueAt: number;
  state: string;
  acked: boolean;
  payload: unknown;
}

/** Stored exactly so: spacing, key order and `1.0` must come back as they are. */
const KEPT = '{"b": 1.0,  "a":[1, 2 ]}';

describeWithDatabase("browse", () => {
  const t = useTestServer("browse");
  const conn = useServerDatabase(t);
  const client = () => new TablemqClient({ url: t.base });
  const path = (table: string, suffix = "") => `/v1/tables/${table}/messages${suffix}`;
  const idsOf = async (table: string, query = "") => {
    const { status, body } = await http<{ messages: Browsed[] }>(t.base, "GET", path(table, query));
    expect(status).toBe(200);
    return body.messages.map((m) => m.id);
  };

  /** Every row as stored: what a browse must leave as it was. */
  async function rows(table: string): Promise<string> {
    const [list] = await conn.pool.query(`SELECT id, priority, epoch, time_next, time_acked, message FROM ${table} ORDER BY id`);
    return JSON.stringify(list);
  }

  /**
   * In flight 101, 102 (delivered to a subscriber that holds them, unacked, and has no credit left); ready
   * 201..203; delayed 301 (10 min) and 302 (5 min); 401 acked.
   */
  async function seeded(): Promise<string> {
    const table = uniqueTableName("browse");
    await client().createTable(table, { ackWaitMs: 60_000, minBackoffMs: 1_000 });
    await client().publish(table, [
      { id: "101", payload: { n: 101 } },
      { id: "102", payload: { n: 102 }, priority: 7 },
    ]);
    const holder = await t.subscribe(table, "?maxInFlight=2");
    await holder.waitForMessages(2);
    await waitUntil(async () => (await client().describeTable(table)).stats.inFlight === 2, "two deliveries recorded");
    const raw = `{"messages":[{"id":"201","payload":${KEPT}},{"id":"202","payload":"two"},{"id":"203","payload":[3]}]}`;
    expect((await http(t.base, "POST", path(table), undefined, raw)).status).toBe(201);
    await client().publish(table, [
      { id: "301", payload: 301, delayMs: 600_000 },
      { id: "302", payload: 302, delayMs: 300_000 },
      { id: "401", payload: 401 },
    ]);
    expect(await client().ack(table, ["401"])).toBe(1);
    expect((await client().describeTable(table)).stats).toMatchObject({ ready: 3, delayed: 2, inFlight: 2, acked: 1 });
    return table;
  }

  it("lists unacked messages by state and order, a page at a time, and one by id; browsing changes nothing", async () => {
    const table = await seeded();
    const before = await rows(table);
    const statsBefore = (await client().describeTable(table)).stats;
    const startedAt = Date.now();

    // All unacked (401 is acked: never shown), soonest due first: the ready ones, those in flight (due again
    // after their ack wait), then the delayed ones.
    const all = (await http<{ messages: Browsed[]; next?: string }>(t.base, "GET", path(table))).body;
    expect(all.next).toBeUndefined();
    const ids = all.messages.map((m) => m.id);
    expect(ids.slice(0, 3)).toEqual(["201", "202", "203"]);
    expect(ids.slice(3, 5).sort()).toEqual(["101", "102"]);
    expect(ids.slice(5)).toEqual(["302", "301"]);
    const byId = new Map(all.messages.map((m) => [m.id, m]));
    expect(byId.get("201")).toEqual({
      id: "201",
      priority: 50,
      epoch: 0,
      dueAt: expect.any(Number),
      state: "ready",
      acked: false,
      payload: { b: 1, a: [1, 2] },
    });
    expect(byId.get("102")).toMatchObject({ priority: 7, epoch: 1, state: "inFlight", acked: false, payload: { n: 102 } });
    expect(byId.get("301")).toMatchObject({ epoch: 0, state: "delayed", payload: 301 });
    expect(byId.get("201")!.dueAt).toBeLessThanOrEqual(startedAt);
    expect(byId.get("102")!.dueAt).toBeGreaterThan(startedAt + 50_000);
    expect(byId.get("301")!.dueAt).toBeGreaterThan(startedAt + 590_000);

    expect(await idsOf(table, "?state=ready")).toEqual(["201", "202", "203"]);
    expect(await idsOf(table, "?state=delayed")).toEqual(["302", "301"]);
    expect((await idsOf(table, "?state=inFlight")).sort()).toEqual(["101", "102"]);
    expect(await idsOf(table, "?order=newest")).toEqual(["302", "301", "203", "202", "201", "102", "101"]);
    expect(await idsOf(table, "?state=delayed&order=newest")).toEqual(["302", "301"]);

    // Pages: each order's cursor continues after the last message of the page before; the last has no `next`.
    for (const [order, limit] of [
      ["newest", 3],
      ["next", 2],
      ["next", 7],
    ] as const) {
      const pages: string[][] = [];
      let cursor: string | undefined;
      do {
        const query = `?order=${order}&limit=${limit}${cursor === undefined ? "" : `&cursor=${encodeURIComponent(cursor)}`}`;
        const page = (await http<{ messages: Browsed[]; next?: string }>(t.base, "GET", path(table, query))).body;
        pages.push(page.messages.map((m) => m.id));
        cursor = page.next;
      } while (cursor !== undefined && pages.length < 10);
      expect(pages.flat(), `${order} by ${limit}`).toEqual(await idsOf(table, `?order=${order}`));
      expect(pages.length, `${order} by ${limit}`).toBe(Math.ceil(7 / limit));
    }

    // One by id, its payload byte for byte as sent (the answer is read as text, not parsed).
    const one = await fetch(`${t.base}${path(table, "/201")}`);
    expect(one.status).toBe(200);
    expect(one.headers.get("content-type")).toMatch(/^application\/json/);
    const text = await one.text();
    expect(text.endsWith(`"payload":${KEPT}}`)).toBe(true);
    expect(JSON.parse(text)).toEqual(byId.get("201"));
    const listed = await (await fetch(`${t.base}${path(table, "?state=ready&limit=1")}`)).text();
    expect(listed).toContain(`"payload":${KEPT}}`);
    expect((await http(t.base, "GET", path(table, "/101"))).body).toMatchObject({ id: "101", epoch: 1, state: "inFlight" });

    // The client.
    const c = client();
    expect((await c.browse(table, { state: "ready" })).messages.map((m) => m.id)).toEqual(["201", "202", "203"]);
    const first = await c.browse(table, { order: "newest", limit: 4 });
    expect(first.messages.map((m) => m.id)).toEqual(["302", "301", "203", "202"]);
    const rest = await c.browse(table, { order: "newest", limit: 4, cursor: first.next! });
    expect(rest.messages.map((m) => m.id)).toEqual(["201", "102", "101"]);
    expect(rest.next).toBeUndefined();
    expect(await c.getMessage(table, "302")).toMatchObject({ id: "302", state: "delayed", epoch: 0, acked: false, payload: 302 });
    const missing = await c.getMessage(table, "401").catch((err: unknown) => err);
    expect(missing).toBeInstanceOf(TablemqError);
    expect(missing).toMatchObject({ status: 404, code: "message_not_found" });

    // Nothing changed: every row (epochs, due times, acks) and the table's counts are as they were.
    expect(await rows(table)).toBe(before);
    expect((await client().describeTable(table)).stats).toEqual(statsBefore);

    // A new subscriber gets the ready messages as first deliveries, nothing else.
    const sub = await t.subscribe(table, "?maxInFlight=10");
    const got = await sub.waitForMessages(3);
    expect(got.map((m) => [m.id, m.epoch]).sort()).toEqual([
      ["201", 0],
      ["202", 0],
      ["203", 0],
    ]);
    expect(got.find((m) => m.id === "201")!.payload).toEqual({ b: 1, a: [1, 2] });
    sub.send({ type: "ack", ids: ["201", "202", "203"] });
    await waitUntil(async () => (await idsOf(table, "?state=ready")).length === 0, "the acked messages to leave the browse");
    expect(await idsOf(table)).toHaveLength(4);
  });

  it("answers a bad query or id with a 400 naming it, an unknown table or message with a 404", async () => {
    const table = await seeded();
    const bad = async (suffix: string, field: RegExp) => {
      const { status, body } = await http(t.base, "GET", path(table, suffix));
      expect(status, suffix).toBe(400);
      expect(body.error.code, suffix).toBe("validation_failed");
      expect(body.error.message, suffix).toMatch(field);
    };
    await bad("?state=acked", /querystring\.state/);
    await bad("?state=", /querystring\.state/);
    await bad("?order=oldest", /querystring\.order/);
    for (const limit of ["0", "1001", "-1", "abc", "1.5", ""]) await bad(`?limit=${limit}`, /querystring\.limit/);
    await bad("?limit=1&limit=2", /querystring\.limit/);
    await bad("?cursor=x", /querystring\.cursor/);
    await bad("?colour=red", /unknown field "colour"/);
    // A cursor of the other order: its shape is fine, its meaning is not.
    const next = (await http(t.base, "GET", path(table, "?limit=1"))).body.next as string;
    expect(next).toMatch(/^[0-9]+:201$/);
    await bad(`?order=newest&cursor=${next}`, /^cursor: /);
    await bad("?order=next&cursor=201", /^cursor: /);
    await bad("/abc", /params\.id/);
    await bad("/01", /params\.id/);
    await bad("/99999999999999999999", /^id: /); // 20 digits, past 2^64 - 1

    const gone = uniqueTableName("nope");
    for (const suffix of ["", "/201"]) {
      const { status, body } = await http(t.base, "GET", path(gone, suffix));
      expect({ status, code: body.error.code }).toEqual({ status: 404, code: "table_not_found" });
    }
    for (const id of ["401", "999", "18446744073709551615"]) {
      const { status, body } = await http(t.base, "GET", path(table, `/${id}`));
      expect({ status, code: body.error.code }, id).toEqual({ status: 404, code: "message_not_found" });
    }
    const err = await client()
      .browse(table, { limit: 0 })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 400, code: "validation_failed" });
  });
});
