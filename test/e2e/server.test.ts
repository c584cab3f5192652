import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMysqlStore } from "../../src/store/mysql/store.js";
import type { RunningServer } from "../../src/server/server.js";
import { describeWithDatabase, uniqueTableName, useOwnDatabase } from "../support/database.js";
import { http, startTestServer, TestSubscriber, useTestServer } from "../support/server.js";
import { sleep, waitUntil } from "../support/wait.js";

const FAST = { ackWaitMs: 600, minBackoffMs: 600, pollIntervalMs: 200 };

describeWithDatabase("server end to end", () => {
  const t = useTestServer("server_e2e");
  const subscribe = (table: string, query = "", autoAck = false) => t.subscribe(table, query, autoAck);

  const newTable = async (options: object = FAST) => {
    const table = uniqueTableName("e2e");
    const res = await http(t.base, "PUT", `/v1/tables/${table}`, options);
    expect(res.status).toBe(201);
    return table;
  };
  const enqueue = async (table: string, messages: object[]) => {
    const res = await http(t.base, "POST", `/v1/tables/${table}/messages`, { messages });
    expect(res.status).toBe(201);
    return res.body.ids as string[];
  };

  it("enqueues, pushes over the socket and acks over HTTP", async () => {
    const table = await newTable();
    const sub = await subscribe(table);
    expect(sub.frames[0]).toEqual({ type: "subscribed", table, batchSize: 10, ackWaitMs: 600, maxInFlight: 100, pingIntervalMs: 30_000 });
    const ids = await enqueue(table, [{ payload: { order: 1 } }, { payload: "two", priority: 10 }]);
    const got = await sub.waitForMessages(2);
    expect(got.map((m) => m.id).sort()).toEqual([...ids].sort());
    expect(got.find((m) => m.id === ids[0])).toEqual({ id: ids[0], priority: 50, epoch: 0, receipt: `${ids[0]}:0`, payload: { order: 1 } });
    const ack = await http(t.base, "POST", `/v1/tables/${table}/ack`, { ids });
    expect(ack).toMatchObject({ status: 200, body: { acked: 2 } });
    await sleep(1_700); // past ack wait + backoff: nothing comes back
    expect(sub.messages).toHaveLength(2);
    expect((await http(t.base, "GET", `/v1/tables/${table}`)).body.stats).toMatchObject({ acked: 2, ready: 0, receivers: 1 });
  });

  it("acks over the socket, answering frames that carry a ref", async () => {
    const table = await newTable();
    const sub = await subscribe(table);
    const [id] = await enqueue(table, [{ payload: 1 }]);
    await sub.waitForMessages(1);
    sub.send({ type: "ack", ids: [id], ref: "r1" });
    await waitUntil(() => sub.frames.some((f) => f.type === "acked"), "the acked frame");
    expect(sub.frames.find((f) => f.type === "acked")).toEqual({ type: "acked", ref: "r1", acked: 1 });
    expect((await http(t.base, "GET", `/v1/tables/${table}`)).body.stats.acked).toBe(1);
  });

  it("delivers a postponed message again after its delay, over HTTP and over the socket", async () => {
    const table = await newTable({ ...FAST, ackWaitMs: 30_000, minBackoffMs: 30_000 });
    const sub = await subscribe(table);
    const [a, b] = await enqueue(table, [{ payload: "a" }, { payload: "b" }]);
    await sub.waitForMessages(2);
    const started = Date.now();
    expect(await http(t.base, "POST", `/v1/tables/${table}/postpone`, { ids: [a], delayMs: 300 })).toMatchObject({
      body: { postponed: 1 },
    });
    sub.send({ type: "postpone", ids: [b], delayMs: 300 });
    const again = await sub.waitForMessages(4, 3_000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(
      again
        .slice(2)
        .map((m) => m.id)
        .sort(),
    ).toEqual([a, b].sort());
    expect(again.slice(2).every((m) => m.epoch === 1)).toBe(true);
  });

  it("delivers a batch in priority order", async () => {
    const table = await newTable({ ...FAST, batchSize: 5 });
    const ids = await enqueue(table, [
      { payload: 1, priority: 30 },
      { payload: 2, priority: 0 },
      { payload: 3, priority: 255 },
      { payload: 4, priority: 7 },
      { payload: 5, priority: 30 },
    ]);
    const sub = await subscribe(table);
    const got = await sub.waitForMessages(5);
    expect(got.map((m) => m.priority)).toEqual([0, 7, 30, 30, 255]);
    expect(got.map((m) => m.id)).toEqual([ids[1], ids[3], ids[0], ids[4], ids[2]]);
  });

  it("is idempotent by id: a repeated id is reported, not stored twice", async () => {
    const table = await newTable();
    const first = await http(t.base, "POST", `/v1/tables/${table}/messages`, { messages: [{ id: "100", payload: "x" }] });
    expect(first).toMatchObject({ status: 201, body: { ids: ["100"] } });
    const again = await http(t.base, "POST", `/v1/tables/${table}/messages`, {
      messages: [
        { id: "100", payload: "y" },
        { id: "101", payload: "z" },
      ],
    });
    expect(again).toMatchObject({ status: 201, body: { ids: ["100", "101"], duplicates: ["100"] } });
    const sub = await subscribe(table);
    const got = await sub.waitForMessages(2);
    expect(got.find((m) => m.id === "100")?.payload).toBe("x");
  });

  it("shares messages round-robin between two subscribers, none twice while acks arrive in time", async () => {
    const table = await newTable({ ...FAST, batchSize: 5, ackWaitMs: 5_000, minBackoffMs: 5_000 });
    const a = await subscribe(table, "", true);
    const b = await subscribe(table, "", true);
    const ids: string[] = [];
    for (let i = 0; i < 10; i++)
      ids.push(
        ...(await enqueue(
          table,
          Array.from({ length: 20 }, (_, j) => ({ payload: i * 20 + j })),
        )),
      );
    await waitUntil(() => a.messages.length + b.messages.length >= 200, "all 200 messages", 10_000);
    const all = [...a.ids, ...b.ids];
    expect(new Set(all).size).toBe(200);
    expect(all).toHaveLength(200);
    expect(a.messages.length).toBeGreaterThan(0);
    expect(b.messages.length).toBeGreaterThan(0);
    await waitUntil(async () => (await http(t.base, "GET", `/v1/tables/${table}`)).body.stats.acked === 200, "all acked");
  });

  it("stops sending to a subscriber at maxInFlight; its messages reach another after the ack wait", async () => {
    const table = await newTable({ ...FAST, batchSize: 2 });
    const stuck = await subscribe(table, "?maxInFlight=3");
    expect(stuck.frames[0].maxInFlight).toBe(3);
    const ids = await enqueue(
      table,
      Array.from({ length: 6 }, (_, i) => ({ payload: i })),
    );
    await stuck.waitForMessages(3);
    await sleep(300);
    expect(stuck.messages).toHaveLength(3); // never more than its credit
    const helper = await subscribe(table, "", true);
    await waitUntil(() => new Set(helper.ids).size === 6, "the other subscriber to get all six", 5_000).catch((e) => {
      console.log(JSON.stringify({ stuck: stuck.messages, helper: helper.messages }));
      throw e;
    });
    expect(new Set(helper.ids)).toEqual(new Set(ids));
    expect(helper.messages.filter((m) => stuck.ids.includes(m.id)).every((m) => m.epoch >= 1)).toBe(true);
  });

  it("answers an unknown table with 404, over HTTP and on the upgrade", async () => {
    for (const [method, path, body] of [
      ["GET", "/v1/tables/nope", undefined],
      ["POST", "/v1/tables/nope/messages", { messages: [{ payload: 1 }] }],
      ["POST", "/v1/tables/nope/ack", { ids: ["1"] }],
      ["POST", "/v1/tables/nope/postpone", { ids: ["1"] }],
      ["DELETE", "/v1/tables/nope", undefined],
    ] as const) {
      const res = await http(t.base, method, path, body);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error.code).toBe("table_not_found");
    }
    const sub = new TestSubscriber(t.base, "nope");
    await expect(sub.opened).rejects.toThrow(/404/);
  });

  it("answers 404 for a table dropped behind its back, and lists the others", async () => {
    const keep = await newTable();
    const gone = await newTable();
    const admin = createMysqlStore(t.databaseUrl, { connectionLimit: 1 });
    try {
      await sql`DROP TABLE ${sql.table(gone)}`.execute(admin.db);
    } finally {
      await admin.close();
    }
    const res = await http(t.base, "POST", `/v1/tables/${gone}/messages`, { messages: [{ payload: 1 }] });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe("table_not_found");
    const list = await http(t.base, "GET", "/v1/tables");
    expect(list.status).toBe(200);
    const names = list.body.tables.map((t: { name: string }) => t.name);
    expect(names).toContain(keep);
    expect(names).not.toContain(gone);
  });

  it("answers 409 when PUT names an existing table that is not a message table", async () => {
    const plain = uniqueTableName("plain");
    const admin = createMysqlStore(t.databaseUrl, { connectionLimit: 1 });
    try {
      await sql`CREATE TABLE ${sql.table(plain)} (id INT PRIMARY KEY)`.execute(admin.db);
      const res = await http(t.base, "PUT", `/v1/tables/${plain}`, {});
      expect(res.status).toBe(409);
      expect(res.body.error.code).toBe("conflict");
    } finally {
      await sql`DROP TABLE IF EXISTS ${sql.table(plain)}`.execute(admin.db);
      await admin.close();
    }
  });

  describe("bad input", () => {
    let table: string;
    const rowCount = async () => {
      const { ready, delayed, inFlight, acked } = (await http(t.base, "GET", `/v1/tables/${table}`)).body.stats;
      return ready + delayed + inFlight + acked;
    };

    beforeAll(async () => {
      table = await newTable();
      await enqueue(table, [{ id: "1", payload: "keep" }]);
    });

    const big = "x".repeat(300 * 1024);
    const cases: Array<[string, string, string, unknown, number, string, RegExp]> = [
      ["malformed JSON", "POST", "messages", "{nope", 400, "bad_request", /malformed JSON/],
      ["empty body", "POST", "messages", "", 400, "validation_failed", /^body/],
      ["body not an object", "POST", "messages", [1, 2], 400, "validation_failed", /body/],
      ["messages missing", "POST", "messages", {}, 400, "validation_failed", /messages/],
      ["messages empty", "POST", "messages", { messages: [] }, 400, "validation_failed", /messages/],
      ["messages not an array", "POST", "messages", { messages: "x" }, 400, "validation_failed", /messages/],
      ["payload missing", "POST", "messages", { messages: [{ priority: 1 }] }, 400, "validation_failed", /messages\[0\]\.payload/],
      [
        "priority too high",
        "POST",
        "messages",
        { messages: [{ payload: 1, priority: 256 }] },
        400,
        "validation_failed",
        /messages\[0\]\.priority/,
      ],
      ["priority negative", "POST", "messages", { messages: [{ payload: 1, priority: -1 }] }, 400, "validation_failed", /priority/],
      ["priority a string", "POST", "messages", { messages: [{ payload: 1, priority: "1" }] }, 400, "validation_failed", /priority/],
      ["priority fractional", "POST", "messages", { messages: [{ payload: 1, priority: 1.5 }] }, 400, "validation_failed", /priority/],
      ["delayMs negative", "POST", "messages", { messages: [{ payload: 1, delayMs: -5 }] }, 400, "validation_failed", /delayMs/],
      [
        "deliverAt past BIGINT ns",
        "POST",
        "messages",
        { messages: [{ payload: 1, deliverAt: 10_000_000_000_000 }] },
        400,
        "validation_failed",
        /messages\[0\]\.deliverAt/,
      ],
      ["id not digits", "POST", "messages", { messages: [{ payload: 1, id: "abc" }] }, 400, "validation_failed", /messages\[0\]\.id/],
      ["id a number", "POST", "messages", { messages: [{ payload: 1, id: 5 }] }, 400, "validation_failed", /messages\[0\]\.id/],
      [
        "id over 2^64-1",
        "POST",
        "messages",
        { messages: [{ payload: 1, id: "18446744073709551616" }] },
        400,
        "validation_failed",
        /messages\[0\]\.id/,
      ],
      ["unknown message field", "POST", "messages", { messages: [{ payload: 1, colour: "red" }] }, 400, "validation_failed", /colour/],
      ["unknown top-level field", "POST", "messages", { messages: [{ payload: 1 }], extra: true }, 400, "validation_failed", /extra/],
      [
        "second message bad",
        "POST",
        "messages",
        { messages: [{ payload: 1 }, { payload: 2, priority: 999 }] },
        400,
        "validation_failed",
        /messages\[1\]\.priority/,
      ],
      ["payload too large", "POST", "messages", { messages: [{ payload: big }] }, 413, "payload_too_large", /messages\[0\]\.payload/],
      // 92,160 characters but 276,482 bytes of UTF-8: the limit counts bytes.
      [
        "payload too large in bytes",
        "POST",
        "messages",
        { messages: [{ payload: "€".repeat(90 * 1024) }] },
        413,
        "payload_too_large",
        /messages\[0\]\.payload/,
      ],
      [
        "too many messages",
        "POST",
        "messages",
        { messages: Array.from({ length: 1001 }, () => ({ payload: 1 })) },
        413,
        "payload_too_large",
        /messages/,
      ],
      ["ack ids missing", "POST", "ack", {}, 400, "validation_failed", /ids/],
      ["ack ids empty", "POST", "ack", { ids: [] }, 400, "validation_failed", /ids/],
      ["ack id not a string", "POST", "ack", { ids: [1] }, 400, "validation_failed", /ids\[0\]/],
      ["ack too many ids", "POST", "ack", { ids: Array.from({ length: 1001 }, (_, i) => String(i)) }, 413, "payload_too_large", /ids/],
      ["postpone delay negative", "POST", "postpone", { ids: ["1"], delayMs: -1 }, 400, "validation_failed", /delayMs/],
      ["postpone delay a string", "POST", "postpone", { ids: ["1"], delayMs: "5" }, 400, "validation_failed", /delayMs/],
      ["table option unknown", "PUT", "", { ackWait: 5 }, 400, "validation_failed", /ackWait/],
      ["table option wrong type", "PUT", "", { batchSize: "10" }, 400, "validation_failed", /batchSize/],
      ["table option zero", "PUT", "", { ackWaitMs: 0 }, 400, "validation_failed", /ackWaitMs/],
      ["batch larger than cache", "PUT", "", { batchSize: 50, cacheSize: 10 }, 400, "validation_failed", /batchSize/],
      ["max backoff below min", "PUT", "", { minBackoffMs: 5000, maxBackoffMs: 10 }, 400, "validation_failed", /maxBackoffMs/],
    ];

    it.each(cases)("%s → %s", async (_name, method, action, body, status, code, message) => {
      const before = await rowCount();
      const optionsBefore = (await http(t.base, "GET", `/v1/tables/${table}`)).body.options;
      const path = `/v1/tables/${table}${action ? "/" + action : ""}`;
      const res = typeof body === "string" ? await http(t.base, method, path, undefined, body) : await http(t.base, method, path, body);
      expect(res.status).toBe(status);
      expect(res.body.error.code).toBe(code);
      expect(res.body.error.message).toMatch(message);
      expect(await rowCount()).toBe(before);
      expect((await http(t.base, "GET", `/v1/tables/${table}`)).body.options).toEqual(optionsBefore);
    });

    it("accepts a payload of up to maxPayloadBytes bytes, whatever its length in characters", async () => {
      // 200,002 bytes (3 bytes per character would be over 256 KiB, so the bytes are counted) and 87,002
      // characters of 3 bytes each (261,006 bytes).
      for (const payload of ["x".repeat(200_000), "€".repeat(87_000)]) {
        const res = await http(t.base, "POST", `/v1/tables/${table}/messages`, { messages: [{ payload }] });
        expect(res.status).toBe(201);
      }
    });

    it.each([
      ["upper-case table name", "/v1/tables/Orders/messages"],
      ["table name with a dash", "/v1/tables/or-ders/messages"],
      ["table name too long", `/v1/tables/${"a".repeat(64)}/messages`],
      ["table name with a quote", "/v1/tables/a'b/messages"],
    ])("rejects a hostile table name: %s", async (_name, path) => {
      const res = await http(t.base, "POST", path, { messages: [{ payload: 1 }] });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: "validation_failed", message: expect.stringMatching(/table/) });
    });

    it("takes PUT and DELETE of a table with no body, even one that says it is JSON; refuses an empty enqueue", async () => {
      const bare = uniqueTableName("bare");
      const json = { "content-type": "application/json" };
      expect((await fetch(`${t.base}/v1/tables/${bare}`, { method: "PUT" })).status).toBe(201);
      expect((await fetch(`${t.base}/v1/tables/${bare}`, { method: "PUT", headers: json, body: "" })).status).toBe(200);
      expect((await fetch(`${t.base}/v1/tables/${bare}`, { method: "DELETE", headers: json, body: "" })).status).toBe(200);
      const empty = await fetch(`${t.base}/v1/tables/${table}/messages`, { method: "POST", headers: json, body: "" });
      expect(empty.status).toBe(400);
      expect(((await empty.json()) as { error: { code: string; message: string } }).error).toMatchObject({
        code: "validation_failed",
        message: expect.stringMatching(/^body/),
      });
    });

    it("rejects a wrong content type and an unknown route with the error body", async () => {
      const res = await fetch(`${t.base}/v1/tables/${table}/messages`, {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: "hi",
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("bad_request");
      const missing = await http(t.base, "GET", "/v2/whatever");
      expect(missing.status).toBe(404);
      expect(missing.body.error.code).toBe("not_found");
    });

    it("rejects bad subscribe parameters before the upgrade", async () => {
      for (const q of ["?maxInFlight=0", "?maxInFlight=abc", "?maxInFlight=99999999", "?colour=red"]) {
        const sub = new TestSubscriber(t.base, table, q);
        await expect(sub.opened, q).rejects.toThrow(/400/);
      }
    });

    it("answers bad socket frames with error frames naming the field, then closes with 1008", async () => {
      const sub = await subscribe(table);
      const before = await rowCount();
      const bad: Array<[unknown, RegExp]> = [
        ["not json", /malformed JSON/],
        [[1, 2], /object/],
        [{ type: "nack", ids: ["1"] }, /type/],
        [{ type: "ack" }, /ids/],
        [{ type: "ack", ids: [] }, /ids/],
        [{ type: "ack", ids: [7] }, /ids\[0\]/],
        [{ type: "ack", ids: ["1"], extra: 1 }, /extra/],
        [{ type: "postpone", ids: ["1"], delayMs: -3 }, /delayMs/],
        [{ type: "ack", ids: Array.from({ length: 1001 }, (_, i) => String(i)) }, /at most/],
      ];
      for (const [frame] of bad) sub.send(frame);
      await waitUntil(() => sub.errors().length === bad.length, "an error frame per bad frame");
      sub.errors().forEach((e, i) => {
        expect(e.code).toBe("bad_request");
        expect(e.message).toMatch(bad[i]![1]);
      });
      expect(sub.closeCode).toBeUndefined();
      sub.send("one too many");
      expect(await sub.waitForClose()).toBe(1008);
      expect(await rowCount()).toBe(before);
      expect((await http(t.base, "GET", `/v1/tables/${table}`)).body.stats.acked).toBe(0);
    });
  });

  it("serves /healthz, /readyz and /metrics", async () => {
    expect((await http(t.base, "GET", "/healthz")).status).toBe(200);
    expect(await http(t.base, "GET", "/readyz")).toMatchObject({ status: 200, body: { status: "ready" } });
    const table = await newTable();
    await enqueue(table, [{ payload: 1 }]);
    const metrics = await fetch(`${t.base}/metrics`).then((r) => r.text());
    expect(metrics).toContain(`tablemq_enqueue_seconds_count{table="${table}"} 1`);
    expect(metrics).toContain("tablemq_tables ");
    expect(metrics).toContain("process_cpu_user_seconds_total");
  });
});

describeWithDatabase("metrics across a table's life", () => {
  const database = useOwnDatabase("metrics_e2e");
  let server: RunningServer;
  beforeAll(async () => {
    server = await startTestServer(database.url);
  });
  afterAll(async () => server?.close());

  it("drops a dropped table's series, and counts a table made again under the same name from zero", async () => {
    const table = uniqueTableName("m");
    const scrape = () => fetch(`${server.url}/metrics`).then((r) => r.text());
    const enqueueCount = (text: string) =>
      Number(new RegExp(`tablemq_enqueue_seconds_count\\{table="${table}"\\} (\\d+)`).exec(text)?.[1] ?? NaN);
    const acked = (text: string) => Number(new RegExp(`tablemq_messages_acked_total\\{table="${table}"\\} (\\d+)`).exec(text)?.[1] ?? NaN);
    await http(server.url, "PUT", `/v1/tables/${table}`, {});
    const { body } = await http(server.url, "POST", `/v1/tables/${table}/messages`, { messages: [{ payload: 1 }, { payload: 2 }] });
    await http(server.url, "POST", `/v1/tables/${table}/ack`, { ids: body.ids });
    const before = await scrape();
    expect(enqueueCount(before)).toBe(1);
    expect(acked(before)).toBe(2);
    await http(server.url, "DELETE", `/v1/tables/${table}`);
    await scrape(); // the scrape that notices the table is gone
    expect(await scrape()).not.toContain(`table="${table}"`);
    await http(server.url, "PUT", `/v1/tables/${table}`, {});
    const again = await http(server.url, "POST", `/v1/tables/${table}/messages`, { messages: [{ payload: 3 }] });
    await http(server.url, "POST", `/v1/tables/${table}/ack`, { ids: again.body.ids });
    expect(acked(await scrape())).toBe(1);
  });
});
