import { expect, it } from "vitest";
import { run } from "../../src/cli/main.js";
import { captureIo } from "../support/cli-io.js";
import { describeEachStore, uniqueTableName } from "../support/database.js";
import { http, useTestServer } from "../support/server.js";
import { waitUntil } from "../support/wait.js";

const FAST = { ackWaitMs: 600, minBackoffMs: 600, pollIntervalMs: 200, batchSize: 10 };

describeEachStore("dead letters end to end", (kind) => {
  const t = useTestServer("dead_e2e", {}, kind);

  /** A consumer whose handler always fails: it postpones every message it gets, to come back at once. */
  const failingConsumer = async (table: string) => {
    const s = await t.subscribe(table);
    s.socket.on("message", (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.type === "messages") s.send({ type: "postpone", ids: frame.messages.map((m: { id: string }) => m.id), delayMs: 0 });
    });
    return s;
  };
  const newTable = async (options: object) => {
    const table = uniqueTableName("dlq");
    expect((await http(t.base, "PUT", `/v1/tables/${table}`, { ...FAST, ...options })).status).toBe(201);
    return table;
  };
  const enqueue = async (table: string, payloads: unknown[]) => {
    const res = await http(t.base, "POST", `/v1/tables/${table}/messages`, { messages: payloads.map((payload) => ({ payload })) });
    expect(res.status).toBe(201);
    return res.body.ids as string[];
  };
  const cli = async (args: string[]) => {
    const io = captureIo({ TABLEMQ_URL: t.base });
    const code = await run(args, io.io);
    return { code, out: io.out(), err: io.err() };
  };

  it("a message that always fails ends in the DLQ after exactly maxAttempts deliveries, and redrive brings it back", async () => {
    const table = await newTable({ maxAttempts: 3 });
    const consumer = await failingConsumer(table);
    const [id] = await enqueue(table, [{ poison: true }]);

    await waitUntil(
      async () => (await http(t.base, "GET", `/v1/tables/${table}`)).body.stats.dead === 1,
      "the message to be dead-lettered",
      10_000,
    );
    expect(consumer.messages.map((m) => m.epoch)).toEqual([0, 1, 2]);
    const { body: described } = await http(t.base, "GET", `/v1/tables/${table}`);
    expect(described).toMatchObject({ options: { maxAttempts: 3 }, stats: { dead: 1, ready: 0, inFlight: 0, delayed: 0 } });

    const dead = await http(t.base, "GET", `/v1/tables/${table}/dead`);
    expect(dead.status).toBe(200);
    expect(dead.body).toEqual({
      messages: [
        {
          id,
          priority: 50,
          epoch: 3,
          payload: { poison: true },
          reason: "delivered 3 times without an ack (maxAttempts 3)",
          deadAt: expect.any(Number),
        },
      ],
    });
    const metrics = (await http(t.base, "GET", "/metrics")).body as string;
    expect(metrics).toContain(`tablemq_messages_dead_lettered_total{table="${table}"} 1`);
    expect(metrics).toContain(`tablemq_dead_letters{table="${table}"} 1`);

    // Redriven: delivered again from epoch 0, and (still failing) dead again after three more deliveries.
    const redrive = await http(t.base, "POST", `/v1/tables/${table}/redrive`, { ids: [id, "12345"] });
    expect(redrive).toMatchObject({ status: 200, body: { redriven: 1, missing: ["12345"], conflicts: [] } });
    await waitUntil(() => consumer.messages.length === 6, "three more deliveries", 10_000);
    expect(consumer.messages.map((m) => m.epoch)).toEqual([0, 1, 2, 0, 1, 2]);
    await waitUntil(async () => (await http(t.base, "GET", `/v1/tables/${table}`)).body.stats.dead === 1, "dead again", 10_000);
    const after = (await http(t.base, "GET", "/metrics")).body as string;
    expect(after).toContain(`tablemq_messages_redriven_total{table="${table}"} 1`);
    expect(after).toContain(`tablemq_messages_dead_lettered_total{table="${table}"} 2`);
  });

  it("pages newest first and redrives all; the CLI lists and redrives", async () => {
    const table = await newTable({ maxAttempts: 1 });
    await failingConsumer(table);
    const ids = await enqueue(table, [1, 2, 3]);
    await waitUntil(async () => (await http(t.base, "GET", `/v1/tables/${table}`)).body.stats.dead === 3, "three dead letters", 10_000);

    const first = await http(t.base, "GET", `/v1/tables/${table}/dead?limit=2`);
    expect(first.body.messages).toHaveLength(2);
    const rest = await http(t.base, "GET", `/v1/tables/${table}/dead?limit=2&cursor=${first.body.next}`);
    expect(rest.body.next).toBeUndefined();
    const listed = [...first.body.messages, ...rest.body.messages];
    expect(listed.map((m: { id: string }) => m.id).sort()).toEqual([...ids].sort());
    const deadAt = listed.map((m: { deadAt: number }) => m.deadAt);
    expect(deadAt).toEqual([...deadAt].sort((a, b) => b - a));

    const list = await cli(["dlq", "list", table, "--limit", "2"]);
    expect(list.code).toBe(0);
    expect(
      list.out
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).id),
    ).toEqual(first.body.messages.map((m: { id: string }) => m.id));
    expect(list.err).toBe(`more: --cursor ${first.body.next}\n`);
    const all = await cli(["dlq", "list", table, "--limit", "2", "--all"]);
    expect(all.out.trim().split("\n")).toHaveLength(3);
    expect(await cli(["dlq", "redrive", table])).toMatchObject({ code: 2, err: "error: give either ids or --all\n" });

    // Redrive all; the consumer still fails, so they come back and die again.
    const redriven = await cli(["dlq", "redrive", table, "--all"]);
    expect(redriven.code).toBe(0);
    expect(JSON.parse(redriven.out)).toEqual({ redriven: 3, missing: [], conflicts: [] });
    await waitUntil(async () => (await http(t.base, "GET", `/v1/tables/${table}`)).body.stats.dead === 3, "dead again", 10_000);
  });

  it("answers bad requests with a 400 naming the field, 404 for an unknown table, and keeps the table unchanged", async () => {
    const table = await newTable({ maxAttempts: 2 });
    const bad: Array<[string, string, object | undefined, RegExp]> = [
      ["POST", "redrive", {}, /ids.*all/],
      ["POST", "redrive", { ids: ["1"], all: true }, /ids.*all/],
      ["POST", "redrive", { ids: ["x"] }, /ids/],
      ["POST", "redrive", { all: true, force: 1 }, /force/],
      ["GET", "dead?limit=0", undefined, /limit/],
      ["GET", "dead?limit=1001", undefined, /limit/],
      ["GET", "dead?cursor=abc", undefined, /cursor/],
    ];
    for (const [method, path, body, field] of bad) {
      const res = await http(t.base, method, `/v1/tables/${table}/${path}`, body);
      expect(res.status, path).toBe(400);
      expect(res.body.error.message, path).toMatch(field);
    }
    expect((await http(t.base, "GET", "/v1/tables/nosuchtable/dead")).status).toBe(404);
    expect((await http(t.base, "POST", "/v1/tables/nosuchtable/redrive", { all: true })).status).toBe(404);
    const long = `t${"x".repeat(59)}`;
    const refused = await http(t.base, "PUT", `/v1/tables/${long}`, { maxAttempts: 3 });
    expect(refused.status).toBe(400);
    expect(refused.body.error.message).toMatch(/^maxAttempts: /);
    expect((await http(t.base, "GET", `/v1/tables/${long}`)).status).toBe(404);
    expect((await http(t.base, "GET", `/v1/tables/${table}`)).body.stats).toMatchObject({ ready: 0, dead: 0 });
  });
});
