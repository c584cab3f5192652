import { expect, it } from "vitest";
import { describeEachStore, uniqueTableName } from "../support/database.js";
import { http, useTestServer } from "../support/server.js";
import { sleep, waitUntil } from "../support/wait.js";

const FAST = { ackWaitMs: 600, minBackoffMs: 600, pollIntervalMs: 200, batchSize: 10 };

describeEachStore("receipts: fenced acks and lease extension", (kind) => {
  const t = useTestServer("receipts_e2e", {}, kind);
  const subscribe = (table: string, query = "") => t.subscribe(table, query);

  const newTable = async () => {
    const table = uniqueTableName("rcpt");
    expect((await http(t.base, "PUT", `/v1/tables/${table}`, FAST)).status).toBe(201);
    return table;
  };
  const enqueue = async (table: string, n: number) => {
    const res = await http(t.base, "POST", `/v1/tables/${table}/messages`, {
      messages: Array.from({ length: n }, (_, i) => ({ payload: i })),
    });
    expect(res.status).toBe(201);
    return res.body.ids as string[];
  };
  const stats = async (table: string) => (await http(t.base, "GET", `/v1/tables/${table}`)).body.stats;

  it("a stale receipt cannot ack a redelivered message (two consumers, the first one slow)", async () => {
    const table = await newTable();
    const slow = await subscribe(table, "?maxInFlight=1");
    const [id] = await enqueue(table, 1);
    const [first] = await slow.waitForMessages(1);
    expect(first).toMatchObject({ id, epoch: 0, receipt: expect.any(String) });

    const fast = await subscribe(table); // the slow one holds its credit: the redelivery goes here
    const [again] = await fast.waitForMessages(1, 5_000);
    expect(again).toMatchObject({ id, epoch: 1 });
    expect(again!.receipt).not.toBe(first!.receipt);

    // The slow consumer finally acks, over HTTP and over its socket: refused as stale, nothing changes.
    const late = await http(t.base, "POST", `/v1/tables/${table}/ack`, { receipts: [first!.receipt] });
    expect(late).toMatchObject({ status: 200, body: { acked: 0, stale: [first!.receipt] } });
    slow.send({ type: "ack", receipts: [first!.receipt], ref: 7 });
    await waitUntil(() => slow.frames.some((f) => f.type === "acked"), "the acked frame");
    expect(slow.frames.find((f) => f.type === "acked")).toEqual({ type: "acked", ref: 7, acked: 0, stale: [first!.receipt] });
    expect(await stats(table)).toMatchObject({ acked: 0 });

    // The current holder's receipt acks it.
    const ack = await http(t.base, "POST", `/v1/tables/${table}/ack`, { receipts: [again!.receipt] });
    expect(ack).toMatchObject({ status: 200, body: { acked: 1, stale: [] } });
    expect(await stats(table)).toMatchObject({ acked: 1 });
    // Plain ids still work as before (and the response has no stale list).
    expect(await http(t.base, "POST", `/v1/tables/${table}/ack`, { ids: [id] })).toMatchObject({ status: 200, body: { acked: 0 } });
  });

  it("extend keeps a slow consumer's message from being redelivered; its unextended batch-mate is redelivered", async () => {
    const table = await newTable();
    const sub = await subscribe(table);
    const [kept, lapsed] = await enqueue(table, 2);
    const batch = await sub.waitForMessages(2);
    const receiptOf = (id: string) => batch.find((m) => m.id === id)!.receipt;

    sub.send({ type: "extend", receipts: [receiptOf(kept!)], byMs: 4_000, ref: "x" });
    await waitUntil(() => sub.frames.some((f) => f.type === "extended"), "the extended frame");
    expect(sub.frames.find((f) => f.type === "extended")).toEqual({ type: "extended", ref: "x", extended: 1, stale: [] });

    await waitUntil(() => sub.messages.some((m) => m.id === lapsed && m.epoch === 1), "the unextended message to come back", 5_000);
    await sleep(1_000); // well past the ack wait plus backoff the extended one would have had
    expect(sub.messages.filter((m) => m.id === kept)).toHaveLength(1);

    // Over HTTP too; the receipt is still current, so it can be extended again and acked.
    const more = await http(t.base, "POST", `/v1/tables/${table}/extend`, { receipts: [receiptOf(kept!)], byMs: 60_000 });
    expect(more).toMatchObject({ status: 200, body: { extended: 1, stale: [] } });
    // A shorter extension moves nothing: not counted as extended, reported unchanged (issue 30).
    const shorter = await http(t.base, "POST", `/v1/tables/${table}/extend`, { receipts: [receiptOf(kept!)], byMs: 1_000 });
    expect(shorter.body).toEqual({ extended: 0, stale: [], unchanged: [receiptOf(kept!)] });
    expect(await http(t.base, "POST", `/v1/tables/${table}/ack`, { receipts: [receiptOf(kept!)] })).toMatchObject({
      body: { acked: 1, stale: [] },
    });
  });

  it("rejects bad receipts and bodies with a 400 naming the field, changing nothing", async () => {
    const table = await newTable();
    const cases: Array<[string, object, RegExp]> = [
      ["ack", {}, /ids/],
      ["ack", { receipts: ["12"] }, /receipts\/0|receipts\[0\]/],
      ["ack", { receipts: [] }, /receipts/],
      ["postpone", { receipts: ["1:x"], delayMs: 5 }, /receipts/],
      ["extend", { receipts: ["1:0"] }, /byMs/],
      ["extend", { receipts: ["1:0"], byMs: 0 }, /byMs/],
      ["extend", { ids: ["1"], byMs: 10 }, /ids|receipts/],
    ];
    for (const [route, body, field] of cases) {
      const res = await http(t.base, "POST", `/v1/tables/${table}/${route}`, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.message, JSON.stringify(body)).toMatch(field);
    }
    // A valid id beside a receipt out of range: refused as a whole, the id is not postponed.
    const [id] = await enqueue(table, 1);
    const mixed = await http(t.base, "POST", `/v1/tables/${table}/postpone`, {
      ids: [id],
      receipts: ["18446744073709551616:0"],
      delayMs: 60_000,
    });
    expect(mixed.status).toBe(400);
    expect(mixed.body.error.message).toMatch(/^receipts\[0\]/);
    expect(await stats(table)).toMatchObject({ ready: 1, delayed: 0 });
    expect(await http(t.base, "POST", `/v1/tables/${table}/ack`, { ids: [id] })).toMatchObject({ body: { acked: 1 } });

    const sub = await subscribe(table);
    sub.send({ type: "extend", receipts: ["1:0"] });
    sub.send({ type: "ack", receipts: ["nope"] });
    await waitUntil(() => sub.errors().length === 2, "two error frames");
    expect(sub.errors().map((f) => f.message)).toEqual([expect.stringMatching(/^byMs/), expect.stringMatching(/^receipts\[0\]/)]);
    expect(await stats(table)).toMatchObject({ ready: 0, acked: 1 });
  });
});
