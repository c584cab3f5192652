/**
 * Webhook subscribers end to end: the real server on 127.0.0.1 POSTing to real HTTP targets on 127.0.0.1,
 * configured over the API and stored in the database.
 */
import { Writable } from "node:stream";
import { sql } from "kysely";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/server/config.js";
import { createLogger, type RunningServer, startServer } from "../../src/server/server.js";
import { WEBHOOKS_TABLE } from "../../src/store/mysql/webhooks.js";
import { SIGNATURE_HEADER, verify } from "../../src/webhooks/signature.js";
import { describeEachStore, uniqueTableName, useOwnStoreDatabase } from "../support/database.js";
import { openRowsReader, type RowsReader } from "../faults/support.js";
import { http, startTestServer, TestSubscriber } from "../support/server.js";
import { sleep, waitUntil } from "../support/wait.js";
import { WebhookTarget } from "../support/webhook-target.js";

/** The recoverer's first wait in these tests (the default is 1 s). */
const RETRY_MIN_MS = 200;
const FAST = { ackWaitMs: 500, minBackoffMs: 500, pollIntervalMs: 200 };

describeEachStore("webhooks end to end", (kind) => {
  const database = useOwnStoreDatabase(kind, "webhooks_e2e");
  let server: RunningServer;
  let base: string;
  let store: RowsReader;
  const targets: WebhookTarget[] = [];
  const subscribers: TestSubscriber[] = [];

  beforeAll(async () => {
    server = await startTestServer(database.url, { webhookRetryMinMs: RETRY_MIN_MS });
    base = server.url;
    store = openRowsReader(database.url);
  });
  afterEach(async () => {
    for (const s of subscribers.splice(0)) s.close();
    // Every POST a target got has the body wire.ts describes (it is written as text around the payloads).
    expect(targets.flatMap((t) => t.badBodies)).toEqual([]);
  });
  afterAll(async () => {
    await server?.close();
    await store?.close();
    await Promise.all(targets.map((t) => t.stop()));
  });

  const target = async () => {
    const t = await new WebhookTarget().start();
    targets.push(t);
    return t;
  };
  const newTable = async (options: object = FAST) => {
    const table = uniqueTableName("wh");
    expect((await http(base, "PUT", `/v1/tables/${table}`, options)).status).toBe(201);
    return table;
  };
  const putWebhook = async (table: string, name: string, body: object, status = 201) => {
    const res = await http(base, "PUT", `/v1/tables/${table}/webhooks/${name}`, body);
    expect(res.status, JSON.stringify(res.body)).toBe(status);
    return res.body;
  };
  const enqueue = async (table: string, count: number) => {
    const res = await http(base, "POST", `/v1/tables/${table}/messages`, {
      messages: Array.from({ length: count }, (_, n) => ({ payload: { n } })),
    });
    expect(res.status).toBe(201);
    return res.body.ids as string[];
  };
  const webhookOf = async (table: string, name: string) =>
    ((await http(base, "GET", `/v1/tables/${table}`)).body.webhooks as any[]).find((w) => w.name === name);
  const storedRows = async () => {
    const { rows } = await sql<{ table_name: string; name: string }>`SELECT table_name, name FROM ${sql.table(WEBHOOKS_TABLE)}`.execute(
      store.db,
    );
    return rows.map((r) => `${r.table_name}/${r.name}`);
  };
  const metric = async (name: string, labels: Record<string, string>) => {
    const text = (await http(base, "GET", "/metrics")).body as string;
    const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
    const line = text.split("\n").find((l) => l.startsWith(name + "{") && want.every((w) => l.includes(w)));
    return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
  };

  it("delivers every message, in order, to a target that fails 3 times then recovers, with the recoverer's backoff", async () => {
    const table = await newTable({ ...FAST, batchSize: 5 });
    const t = await target();
    t.answer = () => (t.requests.length < 3 ? 500 : 200);
    await putWebhook(table, "flaky", { url: t.url, batchSize: 5 });
    const ids = await enqueue(table, 12);

    await waitUntil(() => t.requests.length >= 1, "the first POST");
    await waitUntil(async () => (await webhookOf(table, "flaky"))?.state === "down", "the webhook marked down");
    const down = await webhookOf(table, "flaky");
    expect(down).toMatchObject({ state: "down", lastError: "HTTP 500: refused", held: 5 });
    expect(down.url).toBeUndefined(); // the table description shows health, not the configuration

    const delivered = await t.waitForDelivered(12);
    expect(delivered).toEqual(ids); // every message once, in order
    const attempts = t.requests.slice(0, 4);
    expect(attempts.map((r) => r.status)).toEqual([500, 500, 500, 200]);
    expect(new Set(attempts.map((r) => r.json.delivery)).size).toBe(1); // the same batch retried
    expect(attempts.map((r) => r.json.attempt)).toEqual([1, 2, 3, 4]);
    for (const r of attempts) expect(r.json.messages.map((m) => m.id)).toEqual(ids.slice(0, 5));
    // Waits of 200, 400 and 800 ms (never shorter; some slack for a busy machine, less than the next doubling).
    const gaps = attempts.slice(1).map((r, i) => r.at - attempts[i]!.at);
    [RETRY_MIN_MS, 2 * RETRY_MIN_MS, 4 * RETRY_MIN_MS].forEach((wait, i) => {
      expect(gaps[i], `gap ${i + 1} of ${JSON.stringify(gaps)}`).toBeGreaterThanOrEqual(wait - 5);
      expect(gaps[i], `gap ${i + 1} of ${JSON.stringify(gaps)}`).toBeLessThan(2 * wait);
    });

    await waitUntil(async () => (await webhookOf(table, "flaky"))?.held === 0, "nothing held");
    expect(await webhookOf(table, "flaky")).toMatchObject({ state: "up", failures: 0, lastError: "HTTP 500: refused" });
    expect((await http(base, "GET", `/v1/tables/${table}`)).body.stats).toMatchObject({ acked: 12, ready: 0, inFlight: 0 });
    expect(await metric("tablemq_webhook_deliveries_total", { table, webhook: "flaky", result: "failed" })).toBe(3);
    expect(await metric("tablemq_webhook_deliveries_total", { table, webhook: "flaky", result: "ok" })).toBe(3);
    expect(await metric("tablemq_webhook_messages_delivered_total", { table, webhook: "flaky" })).toBe(12);
    expect(await metric("tablemq_webhook_up", { table, webhook: "flaky" })).toBe(1);
  });

  it("keeps a down destination's batch from other subscribers past the ack wait, and shows it down in metrics", async () => {
    const table = await newTable(FAST);
    const t = await target();
    let healthy = false;
    t.answer = () => (healthy ? 200 : 503);
    await putWebhook(table, "down", { url: t.url, batchSize: 10 });
    const ids = await enqueue(table, 4);
    await waitUntil(async () => (await webhookOf(table, "down"))?.state === "down", "the webhook marked down");
    expect(await metric("tablemq_webhook_up", { table, webhook: "down" })).toBe(0);
    expect(await metric("tablemq_webhook_held_messages", { table, webhook: "down" })).toBe(4);
    const other = new TestSubscriber(base, table, "", { autoAck: true });
    subscribers.push(other);
    await other.opened;
    await sleep(4 * FAST.ackWaitMs); // well past the lease the send gave them
    expect(other.ids).toEqual([]);
    healthy = true;
    expect(await t.waitForDelivered(4, 15_000)).toEqual(ids);
  });

  it("signs with the secret: the target verifies it, and sees a mismatch when the webhook has the wrong one", async () => {
    // Webhooks of a table share its messages (round robin, like subscribers): batches of 3 give each some.
    const table = await newTable({ ...FAST, batchSize: 3 });
    const shared = "shared-secret-9f2c";
    const t = await target();
    t.answer = (req) => (verify(shared, req.raw, req.headers[SIGNATURE_HEADER] as string | undefined) ? 200 : 401);
    await putWebhook(table, "right", { url: t.url, secret: shared, batchSize: 3 });
    await putWebhook(table, "wrong", { url: t.url, secret: "not-the-shared-secret", batchSize: 3 });
    await enqueue(table, 6);
    await waitUntil(async () => (await webhookOf(table, "wrong"))?.state === "down", "the wrong-secret webhook marked down");
    const byWebhook = (name: string) => t.requests.filter((r) => r.json.webhook === name);
    await waitUntil(() => byWebhook("right").some((r) => r.status === 200), "a verified delivery");
    expect(byWebhook("right").every((r) => r.status === 200)).toBe(true);
    expect(byWebhook("wrong")[0]!.headers[SIGNATURE_HEADER]).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(byWebhook("wrong").every((r) => r.status === 401)).toBe(true);
    expect(await webhookOf(table, "wrong")).toMatchObject({ state: "down", lastError: "HTTP 401: refused" });
  });

  it("sends no signature without a secret", async () => {
    const table = await newTable(FAST);
    const t = await target();
    await putWebhook(table, "plain", { url: t.url });
    await enqueue(table, 1);
    await t.waitForDelivered(1);
    expect(t.requests[0]!.headers[SIGNATURE_HEADER]).toBeUndefined();
    expect(t.requests[0]!.headers["content-type"]).toBe("application/json");
  });

  it("refuses bad settings with a 400 naming the field, and writes nothing", async () => {
    const table = await newTable(FAST);
    const before = await storedRows();
    const cases: Array<[object, RegExp]> = [
      [{ url: "ftp://127.0.0.1/hook" }, /^url: must use http or https, not "ftp"/],
      [{ url: "javascript:alert(1)" }, /^url: must use http or https/],
      [{ url: "not a url" }, /^url: must be an absolute http or https URL/],
      [{ url: "http://user:pw@127.0.0.1/hook" }, /^url: must not contain a user name or password/],
      [{ url: "" }, /^url must NOT have fewer than 1 characters/],
      [{}, /^url is required/],
      [{ url: "http://127.0.0.1/", batchSize: 0 }, /^batchSize must be >= 1/],
      [{ url: "http://127.0.0.1/", batchSize: 1001 }, /^batchSize must be <= 1000/],
      [{ url: "http://127.0.0.1/", batchSize: 2.5 }, /^batchSize must be integer/],
      [{ url: "http://127.0.0.1/", timeoutMs: 99 }, /^timeoutMs must be >= 100/],
      [{ url: "http://127.0.0.1/", timeoutMs: 120_001 }, /^timeoutMs must be <= 120000/],
      [{ url: "http://127.0.0.1/", secret: "" }, /^secret must NOT have fewer than 1 characters/],
      [{ url: "http://127.0.0.1/", colour: "red" }, /^body: unknown field "colour"/],
    ];
    for (const [body, message] of cases) {
      const res = await http(base, "PUT", `/v1/tables/${table}/webhooks/w`, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code, JSON.stringify(body)).toBe("validation_failed");
      expect(res.body.error.message, JSON.stringify(body)).toMatch(message);
    }
    const badName = await http(base, "PUT", `/v1/tables/${table}/webhooks/Bad%20Name`, { url: "http://127.0.0.1/" });
    expect(badName.status).toBe(400);
    expect(badName.body.error.message).toMatch(/^params\.name must match pattern/);
    expect((await http(base, "GET", `/v1/tables/${table}/webhooks`)).body).toEqual({ webhooks: [] });
    expect(await storedRows()).toEqual(before);
  });

  it("lists, shows, replaces and deletes webhooks, never showing a secret", async () => {
    const table = await newTable(FAST);
    const secret = "top-secret-value-77";
    const created = await putWebhook(table, "b-signed", { url: "http://127.0.0.1:9/b", secret, batchSize: 3, timeoutMs: 2_000 });
    expect(created).toMatchObject({
      name: "b-signed",
      url: "http://127.0.0.1:9/b",
      batchSize: 3,
      timeoutMs: 2_000,
      hasSecret: true,
      state: "up",
      held: 0,
    });
    await putWebhook(table, "a-plain", { url: "https://example.invalid/a" });
    const list = await http(base, "GET", `/v1/tables/${table}/webhooks`);
    expect(list.status).toBe(200);
    expect(list.body.webhooks.map((w: any) => [w.name, w.hasSecret, w.batchSize, w.timeoutMs])).toEqual([
      ["a-plain", false, 10, 10_000],
      ["b-signed", true, 3, 2_000],
    ]);
    const one = await http(base, "GET", `/v1/tables/${table}/webhooks/b-signed`);
    expect(one.body).toMatchObject({ name: "b-signed", hasSecret: true });
    for (const body of [
      created,
      list.body,
      one.body,
      (await http(base, "GET", `/v1/tables/${table}`)).body,
      (await http(base, "GET", "/v1/tables")).body,
    ]) {
      expect(JSON.stringify(body)).not.toContain(secret);
      expect(JSON.stringify(body)).not.toContain('"secret"');
    }
    // A PUT replaces the whole configuration (a secret left out is removed) and keeps createdAt.
    const replaced = await putWebhook(table, "b-signed", { url: "http://127.0.0.1:9/b2" }, 200);
    expect(replaced).toMatchObject({ url: "http://127.0.0.1:9/b2", batchSize: 10, hasSecret: false, createdAt: created.createdAt });
    expect(await http(base, "DELETE", `/v1/tables/${table}/webhooks/a-plain`)).toMatchObject({
      status: 200,
      body: { table, name: "a-plain", deleted: true },
    });
    const again = await http(base, "DELETE", `/v1/tables/${table}/webhooks/a-plain`);
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe("webhook_not_found");
    expect((await http(base, "GET", `/v1/tables/${table}/webhooks/a-plain`)).status).toBe(404);
    expect((await http(base, "GET", `/v1/tables/${table}/webhooks`)).body.webhooks.map((w: any) => w.name)).toEqual(["b-signed"]);
    expect((await http(base, "GET", `/v1/tables/${table}`)).body.stats.receivers).toBe(1);
  });

  it("answers 404 for an unknown table", async () => {
    const missing = uniqueTableName("nope");
    for (const [method, path, body] of [
      ["PUT", `/v1/tables/${missing}/webhooks/w`, { url: "http://127.0.0.1/" }],
      ["GET", `/v1/tables/${missing}/webhooks`, undefined],
      ["GET", `/v1/tables/${missing}/webhooks/w`, undefined],
      ["DELETE", `/v1/tables/${missing}/webhooks/w`, undefined],
    ] as const) {
      const res = await http(base, method, path, body);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error.code).toBe("table_not_found");
    }
    expect((await storedRows()).some((r) => r.startsWith(`${missing}/`))).toBe(false);
  });

  it("deletes a dropped table's webhooks, whether dropped here or behind the server's back", async () => {
    const here = await newTable(FAST);
    const behind = await newTable(FAST);
    await putWebhook(here, "w", { url: "http://127.0.0.1:9/" });
    await putWebhook(behind, "w", { url: "http://127.0.0.1:9/" });
    expect(await storedRows()).toEqual(expect.arrayContaining([`${here}/w`, `${behind}/w`]));

    expect((await http(base, "DELETE", `/v1/tables/${here}`)).status).toBe(200);
    await waitUntil(async () => !(await storedRows()).includes(`${here}/w`), "the dropped table's webhook deleted");
    await sql`DROP TABLE ${sql.table(behind)}`.execute(store.db);
    expect((await http(base, "GET", `/v1/tables/${behind}`)).status).toBe(404); // the server looks, finds it gone
    await waitUntil(async () => !(await storedRows()).includes(`${behind}/w`), "the table dropped elsewhere loses its webhook");

    // A table made again with the name starts without webhooks.
    expect((await http(base, "PUT", `/v1/tables/${here}`, FAST)).status).toBe(201);
    expect((await http(base, "GET", `/v1/tables/${here}/webhooks`)).body).toEqual({ webhooks: [] });
    expect((await http(base, "GET", `/v1/tables/${here}`)).body.stats.receivers).toBe(0);
    await http(base, "DELETE", `/v1/tables/${here}`);
  });

  it("keeps its configuration table out of the message tables", async () => {
    const names = (await http(base, "GET", "/v1/tables")).body.tables.map((t: any) => t.name);
    expect(await storedRows()).toBeDefined(); // the table exists by now
    expect(names).not.toContain(WEBHOOKS_TABLE);
    const res = await http(base, "PUT", `/v1/tables/${WEBHOOKS_TABLE}`, {});
    expect(res.status).toBe(409);
    expect((await http(base, "GET", `/v1/tables/${WEBHOOKS_TABLE}`)).status).toBe(404);
  });

  describe("across a restart", () => {
    const ownDatabase = useOwnStoreDatabase(kind, "webhooks_restart");

    it("keeps the webhooks in the database, delivers after the restart, and never logs a secret", async () => {
      let log = "";
      const sink = new Writable({
        write(chunk, _enc, done) {
          log += chunk.toString();
          done();
        },
      });
      const config = { ...loadConfig({}, { databaseUrl: ownDatabase.url, port: 0, host: "127.0.0.1" }), webhookRetryMinMs: RETRY_MIN_MS };
      const secret = "restart-secret-31ab";
      const t = await target();
      t.answer = (req) => (t.requests.length < 2 ? 500 : verify(secret, req.raw, req.headers[SIGNATURE_HEADER] as string) ? 200 : 401);

      const first = await startServer(config, { logger: createLogger("trace", sink) });
      let second: RunningServer | undefined;
      try {
        const table = "restarted";
        expect((await http(first.url, "PUT", `/v1/tables/${table}`, FAST)).status).toBe(201);
        expect((await http(first.url, "PUT", `/v1/tables/${table}/webhooks/keeper`, { url: t.url, secret, batchSize: 4 })).status).toBe(
          201,
        );
        await first.close();

        second = await startServer(config, { logger: createLogger("trace", sink) });
        const list = await http(second.url, "GET", `/v1/tables/${table}/webhooks`);
        expect(list.body.webhooks).toEqual([
          expect.objectContaining({ name: "keeper", url: t.url, batchSize: 4, hasSecret: true, state: "up" }),
        ]);
        expect((await http(second.url, "GET", `/v1/tables/${table}`)).body.stats.receivers).toBe(1);
        const res = await http(second.url, "POST", `/v1/tables/${table}/messages`, { messages: [{ payload: 1 }, { payload: 2 }] });
        expect(await t.waitForDelivered(2)).toEqual(res.body.ids);
        expect(t.requests.filter((r) => r.status === 500)).toHaveLength(2); // it failed, was logged, recovered
      } finally {
        await first.close();
        await second?.close();
      }
      expect(log).toContain("webhook destination is down");
      expect(log).not.toContain(secret);
    });
  });
});
