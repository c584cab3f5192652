/**
 * The operations API (issue 27) on a real server and MariaDB: pause and resume (honoured by WebSocket
 * subscribers and webhooks, kept in the table across restarts and seen by a second node), deliver now,
 * delete one, purge, the rate history, the live feed (server-sent events), whoami, the `read` scope, and
 * the bad input each route refuses.
 */
import { afterAll, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/server.js";
import { describeWithDatabase, uniqueTableName } from "../support/database.js";
import { http, startTestServer, useServerDatabase, useTestServer } from "../support/server.js";
import { sleep, waitUntil } from "../support/wait.js";
import { WebhookTarget } from "../support/webhook-target.js";

/** Polls often, so "nothing was delivered" below means several polls found nothing to do. */
const FAST = { ackWaitMs: 2_000, minBackoffMs: 2_000, pollIntervalMs: 100 };
const ADMIN = "ops-admin-token";
const READER = "ops-read-token";
const CONSUMER = "ops-consume-token";
const OTHER = "ops-other-table-token";

/** Reads a server-sent event stream until `enough` says so (or the time runs out); returns its events. */
async function readEvents(
  url: string,
  token: string | undefined,
  enough: (events: Array<{ event: string; data: any }>) => boolean,
  timeoutMs = 8_000,
): Promise<{ status: number; contentType: string | null; events: Array<{ event: string; data: any }> }> {
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), timeoutMs);
  const events: Array<{ event: string; data: any }> = [];
  const res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: stop.signal });
  try {
    if (res.status !== 200) return { status: res.status, contentType: res.headers.get("content-type"), events };
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) events.push({ event, data: JSON.parse(data) });
      }
      if (enough(events)) break;
    }
  } catch (err) {
    if (!stop.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    stop.abort();
  }
  return { status: res.status, contentType: res.headers.get("content-type"), events };
}

describeWithDatabase("operations API", () => {
  const t = useTestServer("operations", { webhookRetryMinMs: 200, schemaRefreshMs: 200 });
  const db = useServerDatabase(t);
  const others: RunningServer[] = [];
  const targets: WebhookTarget[] = [];
  afterAll(async () => {
    await Promise.all(others.map((s) => s.close()));
    await Promise.all(targets.map((w) => w.stop()));
  });

  const newTable = async (options: object = FAST) => {
    const table = uniqueTableName("ops");
    expect((await http(t.base, "PUT", `/v1/tables/${table}`, options)).status).toBe(201);
    return table;
  };
  const enqueue = async (table: string, messages: object[]) => {
    const res = await http(t.base, "POST", `/v1/tables/${table}/messages`, { messages });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body.ids as string[];
  };
  const describe = async (table: string) => (await http(t.base, "GET", `/v1/tables/${table}`)).body;

  it("pause stops delivery to a connected subscriber while enqueues go on; resume delivers them", async () => {
    const table = await newTable();
    const sub = await t.subscribe(table, "", true);
    await enqueue(table, [{ payload: "before" }]);
    await sub.waitForMessages(1);

    const paused = await http(t.base, "POST", `/v1/tables/${table}/pause`);
    expect(paused.status).toBe(200);
    expect(paused.body.options.paused).toBe(true);
    const ids = await enqueue(table, [{ payload: "while paused 1" }, { payload: "while paused 2" }, { payload: "delayed", delayMs: 300 }]);
    await sleep(1_000); // ten polls, and the delayed one fell due
    expect(sub.messages.map((m) => m.payload)).toEqual(["before"]);
    expect(sub.closeCode).toBeUndefined(); // still subscribed
    expect((await describe(table)).stats).toMatchObject({ ready: 3, receivers: 1 });
    const metrics = (await http<string>(t.base, "GET", "/metrics")).body;
    expect(metrics).toContain(`tablemq_table_paused{table="${table}"} 1`);
    expect(metrics).toContain(`tablemq_messages_enqueued_total{table="${table}"} 4`);
    // Pausing again changes nothing and says so.
    expect((await http(t.base, "POST", `/v1/tables/${table}/pause`)).body.options.paused).toBe(true);

    const resumed = await http(t.base, "POST", `/v1/tables/${table}/resume`);
    expect(resumed.status).toBe(200);
    expect(resumed.body.options.paused).toBe(false);
    await sub.waitForMessages(4);
    expect(sub.ids.slice(1).sort()).toEqual([...ids].sort());
  });

  it("a paused table's webhook holds its messages; resumed, it POSTs them", async () => {
    const table = await newTable();
    const target = await new WebhookTarget().start();
    targets.push(target);
    await http(t.base, "POST", `/v1/tables/${table}/pause`);
    expect((await http(t.base, "PUT", `/v1/tables/${table}/webhooks/hook`, { url: target.url, batchSize: 10 })).status).toBe(201);
    const ids = await enqueue(table, [{ payload: 1 }, { payload: 2 }]);
    await sleep(1_000);
    expect(target.requests).toEqual([]);
    await http(t.base, "POST", `/v1/tables/${table}/resume`);
    expect((await target.waitForDelivered(2)).sort()).toEqual([...ids].sort());
  });

  it("a webhook holding a batch when the table is paused does not POST it until the table is resumed", async () => {
    const table = await newTable();
    const target = await new WebhookTarget().start();
    targets.push(target);
    target.answer = () => 503; // down: the batch stays held, retried with backoff
    expect((await http(t.base, "PUT", `/v1/tables/${table}/webhooks/hook`, { url: target.url, batchSize: 10 })).status).toBe(201);
    const [id] = await enqueue(table, [{ payload: "held" }]);
    await waitUntil(() => target.requests.length >= 1, "a first (refused) POST");
    await http(t.base, "POST", `/v1/tables/${table}/pause`);
    target.answer = () => 200;
    const tries = target.requests.length;
    await sleep(1_500); // past several retries of the recoverer (200 ms, 400 ms, 800 ms)
    expect(target.requests.length).toBeLessThanOrEqual(tries + 1); // at most one POST already under way
    await http(t.base, "POST", `/v1/tables/${table}/resume`);
    expect(await target.waitForDelivered(1)).toEqual([id]);
  });

  it("keeps the pause in the table: a second node honours it, and a server started later finds it", async () => {
    const table = await newTable();
    await http(t.base, "POST", `/v1/tables/${table}/pause`);
    const [rows] = await db.pool.query(
      "SELECT table_comment AS c FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?",
      [table],
    );
    expect((rows as Array<{ c: string }>)[0]!.c).toMatch(/,vt_paused=1$/);

    const other = await startTestServer(t.databaseUrl);
    others.push(other);
    expect((await http(other.url, "GET", `/v1/tables/${table}`)).body.options.paused).toBe(true);
    const sub = await t.subscribe(table, "", true);
    const elsewhere = new (await import("../support/server.js")).TestSubscriber(other.url, table, "", { autoAck: true });
    await elsewhere.opened;
    await enqueue(table, [{ payload: "a" }, { payload: "b" }]);
    await sleep(800);
    expect([...sub.messages, ...elsewhere.messages]).toEqual([]);
    // Resumed through the second node: the first hears it at its next schema refresh (200 ms here).
    expect((await http(other.url, "POST", `/v1/tables/${table}/resume`)).body.options.paused).toBe(false);
    await waitUntil(() => sub.messages.length + elsewhere.messages.length === 2, "both messages delivered after the resume");
    elsewhere.close();
  });

  it("refuses pause and resume of a table that is not there, or a bad name", async () => {
    const missing = await http(t.base, "POST", `/v1/tables/${uniqueTableName("nope")}/pause`);
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("table_not_found");
    expect((await http(t.base, "POST", `/v1/tables/${uniqueTableName("nope")}/resume`)).status).toBe(404);
    const bad = await http(t.base, "POST", "/v1/tables/Bad-Name/pause");
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/table/);
    // And `paused` in PUT must be a boolean.
    const table = await newTable();
    const wrong = await http(t.base, "PUT", `/v1/tables/${table}`, { paused: "yes" });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error.message).toMatch(/paused/);
    expect((await describe(table)).options.paused).toBe(false);
  });

  it("delivers a delayed message now, and answers 404 for one that is acked or unknown", async () => {
    const table = await newTable();
    const [later] = await enqueue(table, [{ payload: "later", delayMs: 600_000 }]);
    const sub = await t.subscribe(table);
    await sleep(300);
    expect(sub.messages).toEqual([]);
    const res = await http(t.base, "POST", `/v1/tables/${table}/messages/${later}/deliver`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id: later, dueNow: true });
    const [got] = await sub.waitForMessages(1);
    expect(got!.id).toBe(later);
    expect(got!.epoch).toBe(0); // made due, not counted as a delivery
    sub.send({ type: "ack", ids: [later] });
    await waitUntil(async () => (await describe(table)).stats.acked === 1, "the ack");
    const acked = await http(t.base, "POST", `/v1/tables/${table}/messages/${later}/deliver`);
    expect(acked.status).toBe(404);
    expect(acked.body.error.code).toBe("message_not_found");
    expect((await http(t.base, "POST", `/v1/tables/${table}/messages/12345/deliver`)).status).toBe(404);
    const bad = await http(t.base, "POST", `/v1/tables/${table}/messages/x1/deliver`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/id/);
  });

  it("deletes one message, leaving its neighbours; 404 when there is none", async () => {
    const table = await newTable();
    const [a, b] = await enqueue(table, [{ payload: "a" }, { payload: "b", delayMs: 60_000 }]);
    const res = await http(t.base, "DELETE", `/v1/tables/${table}/messages/${b}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id: b, deleted: true });
    expect((await http(t.base, "GET", `/v1/tables/${table}/messages/${b}`)).status).toBe(404);
    expect((await http(t.base, "GET", `/v1/tables/${table}/messages/${a}`)).status).toBe(200);
    expect((await http(t.base, "DELETE", `/v1/tables/${table}/messages/${b}`)).status).toBe(404);
    expect((await http(t.base, "DELETE", `/v1/tables/${table}/messages/not-an-id`)).status).toBe(400);
    const sub = await t.subscribe(table, "", true);
    await sub.waitForMessages(1);
    await sleep(300);
    expect(sub.ids).toEqual([a]);
    expect((await describe(table)).stats).toMatchObject({ ready: 0, delayed: 0 });
  });

  it("deleting a message a subscriber holds gives its credit back", async () => {
    const table = await newTable({ ...FAST, ackWaitMs: 60_000 });
    const [first, second] = await enqueue(table, [{ payload: 1 }, { payload: 2 }]);
    const sub = await t.subscribe(table, "?maxInFlight=1");
    const [held] = await sub.waitForMessages(1);
    await sleep(300);
    expect(sub.messages).toHaveLength(1); // no credit left
    expect((await http(t.base, "DELETE", `/v1/tables/${table}/messages/${held!.id}`)).status).toBe(200);
    await sub.waitForMessages(2);
    expect(sub.ids.sort()).toEqual([first, second].sort());
  });

  it("purges every unacked message, answering the count; acked rows and dead letters stay", async () => {
    const table = await newTable({ ...FAST, maxAttempts: 1 });
    await enqueue(table, [{ payload: "dies" }]);
    const fails = await t.subscribe(table);
    const [dying] = await fails.waitForMessages(1);
    fails.send({ type: "fail", ids: [dying!.id], reason: "bad" });
    await waitUntil(async () => (await describe(table)).stats.dead === 1, "a dead letter");
    fails.close();
    // Gone on the server too: else the next message may be sent to it, and come back only after its lease.
    await waitUntil(async () => (await describe(table)).stats.receivers === 0, "the failing subscriber gone");
    await enqueue(table, [{ payload: "acked" }]);
    const acker = await t.subscribe(table, "", true);
    await acker.waitForMessages(1);
    await waitUntil(async () => (await describe(table)).stats.acked === 1, "the ack");
    acker.close();
    await enqueue(table, [...Array.from({ length: 20 }, (_, n) => ({ payload: n })), { payload: "delayed", delayMs: 60_000 }]);
    const res = await http(t.base, "POST", `/v1/tables/${table}/purge`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ purged: 21 });
    expect((await http<string>(t.base, "GET", "/metrics")).body).toContain(`tablemq_messages_deleted_total{table="${table}"} 21`);
    expect((await describe(table)).stats).toMatchObject({ ready: 0, delayed: 0, inFlight: 0, acked: 1, dead: 1 });
    expect((await http(t.base, "POST", `/v1/tables/${table}/purge`)).body).toEqual({ purged: 0 });
    expect((await http(t.base, "POST", `/v1/tables/${uniqueTableName("nope")}/purge`)).status).toBe(404);
    // Enqueues after a purge are delivered as usual.
    const sub = await t.subscribe(table, "", true);
    await enqueue(table, [{ payload: "after" }]);
    expect((await sub.waitForMessages(1))[0]!.payload).toBe("after");
  });

  it("keeps per-second rates for a table, and its depth while the live feed is read", async () => {
    const table = await newTable();
    await enqueue(
      table,
      Array.from({ length: 5 }, (_, n) => ({ payload: n })),
    );
    const feed = await readEvents(
      `${t.base}/v1/events`,
      undefined,
      (events) =>
        events.some((e) => e.event === "rates" && e.data.tables[table]?.enqueued > 0) &&
        events.some((e) => e.event === "tables" && e.data.tables.some((d: any) => d.name === table && d.stats.ready === 5)),
    );
    expect(feed.status).toBe(200);
    expect(feed.contentType).toMatch(/^text\/event-stream/);
    const described = feed.events.find((e) => e.event === "tables")!.data.tables.find((d: any) => d.name === table);
    expect(described.options).toMatchObject({ paused: false });
    const history = await http(t.base, "GET", `/v1/tables/${table}/history`);
    expect(history.status).toBe(200);
    expect(history.body.stepMs).toBe(1_000);
    const rates = history.body.rates as Array<{ t: number; enqueued: number }>;
    expect(rates.reduce((sum, p) => sum + p.enqueued * (history.body.stepMs / 1000), 0)).toBeCloseTo(5, 0);
    expect(rates.every((p, i) => i === 0 || p.t > rates[i - 1]!.t)).toBe(true);
    expect(history.body.depth.at(-1)).toMatchObject({ ready: 5, delayed: 0, inFlight: 0, dead: 0 });
    expect((await http(t.base, "GET", `/v1/tables/${uniqueTableName("nope")}/history`)).status).toBe(404);
  });

  it("answers whoami with every scope when authentication is off", async () => {
    const res = await http(t.base, "GET", "/v1/whoami");
    expect(res.body).toEqual({ authentication: false, scopes: { "*": ["publish", "consume", "admin", "read", "metrics"] }, ui: true });
  });
});

describeWithDatabase("operations API with tokens", () => {
  const t = useTestServer("operations_auth", {
    authTokens: {
      [ADMIN]: { "*": ["admin"] },
      [READER]: { "*": ["read"] },
      [CONSUMER]: { "*": ["consume"] },
      [OTHER]: { someone_else: ["read", "admin"] },
    },
  });
  const as = async (token: string | undefined, method: string, path: string, body?: unknown) => {
    const res = await fetch(t.base + path, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };

  it("lets a read token look at everything and change nothing", async () => {
    const table = uniqueTableName("scoped");
    expect((await as(ADMIN, "PUT", `/v1/tables/${table}`, FAST)).status).toBe(201);
    const publisher = await as(ADMIN, "POST", `/v1/tables/${table}/messages`, { messages: [{ payload: 1 }] });
    expect(publisher.status).toBe(403); // admin alone cannot publish: scopes do not imply each other
    const looks = [
      `/v1/tables/${table}`,
      `/v1/tables/${table}/messages`,
      `/v1/tables/${table}/dead`,
      `/v1/tables/${table}/history`,
      "/v1/tables",
      "/v1/whoami",
    ];
    for (const path of looks) expect((await as(READER, "GET", path)).status, path).toBe(200);
    expect((await as(READER, "GET", "/v1/whoami")).body).toEqual({ authentication: true, scopes: { "*": ["read"] }, ui: true });
    const changes: Array<[string, string, unknown?]> = [
      ["POST", `/v1/tables/${table}/pause`],
      ["POST", `/v1/tables/${table}/resume`],
      ["POST", `/v1/tables/${table}/purge`],
      ["POST", `/v1/tables/${table}/messages/1/deliver`],
      ["DELETE", `/v1/tables/${table}/messages/1`],
      ["POST", `/v1/tables/${table}/redrive`, { all: true }],
      ["PUT", `/v1/tables/${table}`, { batchSize: 5 }],
    ];
    for (const [method, path, body] of changes) {
      const res = await as(READER, method, path, body);
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(res.body.error.message).toMatch(/lacks the admin scope/);
    }
    // Consumers browse as before; admin may pause but not browse.
    expect((await as(CONSUMER, "GET", `/v1/tables/${table}/messages`)).status).toBe(200);
    expect((await as(ADMIN, "GET", `/v1/tables/${table}/messages`)).status).toBe(403);
    expect((await as(ADMIN, "POST", `/v1/tables/${table}/pause`)).status).toBe(200);
    expect((await as(ADMIN, "POST", `/v1/tables/${table}/purge`)).body).toEqual({ purged: 0 });
    expect((await as(undefined, "GET", "/v1/whoami")).status).toBe(401);
  });

  it("shows the live feed only the tables the token has a scope on", async () => {
    const table = uniqueTableName("fed");
    expect((await as(ADMIN, "PUT", `/v1/tables/${table}`, FAST)).status).toBe(201);
    const seen = await readEvents(`${t.base}/v1/events`, READER, (events) => events.some((e) => e.event === "tables"));
    expect(seen.events.find((e) => e.event === "tables")!.data.tables.map((d: any) => d.name)).toContain(table);
    const hidden = await readEvents(`${t.base}/v1/events`, OTHER, (events) => events.filter((e) => e.event === "rates").length >= 2);
    expect(hidden.events.find((e) => e.event === "tables")!.data.tables).toEqual([]);
    for (const e of hidden.events.filter((x) => x.event === "rates")) expect(Object.keys(e.data.tables)).toEqual([]);
    expect((await readEvents(`${t.base}/v1/events`, undefined, () => true)).status).toBe(401);
  });
});

describeWithDatabase("dashboard switched off", () => {
  const t = useTestServer("operations_noui", { ui: "off" });

  it("serves no /ui/ with TABLEMQ_UI=off, and says so in whoami", async () => {
    expect((await http(t.base, "GET", "/ui/")).status).toBe(404);
    expect((await http(t.base, "GET", "/ui/vendor/preact/dist/preact.mjs")).status).toBe(404);
    expect((await http(t.base, "GET", "/v1/whoami")).body.ui).toBe(false);
  });
});

describeWithDatabase("dashboard files", () => {
  const t = useTestServer("operations_ui");

  it("serves the page, its modules and the vendored libraries, and nothing else of node_modules", async () => {
    const page = await fetch(`${t.base}/ui/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(page.headers.get("cache-control")).toBe("no-cache"); // a new server version brings its own page
    const html = await page.text();
    for (const [, path] of html.matchAll(/"\.\/(vendor\/[^"]+)"/g)) {
      expect((await fetch(`${t.base}/ui/${path}`)).status, path).toBe(200);
    }
    expect((await fetch(`${t.base}/ui/app.js`)).headers.get("content-type")).toMatch(/javascript/);
    expect((await fetch(`${t.base}/ui`, { redirect: "manual" })).headers.get("location")).toBe("/ui/");
    expect((await fetch(`${t.base}/ui/vendor/ws/index.js`)).status).toBe(404);
    expect((await fetch(`${t.base}/ui/vendor/preact/%2e%2e/%2e%2e/package.json`)).status).toBeGreaterThanOrEqual(400);
  });
});
