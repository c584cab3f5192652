/**
 * The answers and frames the server sends match their schemas in wire.ts, the client's types: including the
 * ones built as text around stored payloads (messages frames, the dead-letter list), which no type checks.
 */
import { Ajv, type ValidateFunction } from "ajv";
import { expect, it } from "vitest";
import {
  AckAnswer,
  BrowsedMessageAnswer,
  BrowsePageAnswer,
  DeadLetterPageAnswer,
  EnqueueAnswer,
  ExtendAnswer,
  FailAnswer,
  PostponeAnswer,
  RedriveAnswer,
  ReleaseAnswer,
  ServerFrames,
  TableAnswer,
  WebhookAnswer,
} from "../../src/wire.js";
import { describeEachStore, uniqueTableName } from "../support/database.js";
import { http, useTestServer } from "../support/server.js";
import { waitUntil } from "../support/wait.js";

const ajv = new Ajv({ allErrors: true });
const checkers = new Map<object, ValidateFunction>();

/** Asserts `value` matches `schema`, naming what does not. */
function expectShape(schema: object, value: unknown): void {
  let check = checkers.get(schema);
  if (!check) checkers.set(schema, (check = ajv.compile(schema)));
  expect(check(value) ? [] : check.errors, JSON.stringify(value)).toEqual([]);
}

const frameSchema = (frame: { type: string }): object => {
  const schema = (ServerFrames as Record<string, object>)[frame.type];
  if (!schema) throw new Error(`a frame of unknown type ${JSON.stringify(frame.type)}`);
  return schema;
};

describeEachStore("the wire contract", (kind) => {
  const t = useTestServer("wire_contract", {}, kind);

  it("every HTTP answer and WebSocket frame matches its schema", async () => {
    const table = uniqueTableName("wire");
    const created = await http(t.base, "PUT", `/v1/tables/${table}`, {
      ackWaitMs: 200,
      minBackoffMs: 0,
      maxAttempts: 1,
      pollIntervalMs: 300,
    });
    expect(created.status).toBe(201);
    expectShape(TableAnswer, created.body);
    const listed = await http(t.base, "GET", "/v1/tables");
    for (const d of listed.body.tables) expectShape(TableAnswer, d);

    const enqueued = await http(t.base, "POST", `/v1/tables/${table}/messages`, {
      messages: [
        { id: "1", payload: { a: 1 } },
        { id: "2", payload: [1, "two"] },
        { id: "3", payload: "x", priority: 1 },
        { id: "4", payload: null },
      ],
    });
    expectShape(EnqueueAnswer, enqueued.body);
    const again = await http(t.base, "POST", `/v1/tables/${table}/messages`, { messages: [{ id: "1", payload: 1 }] });
    expectShape(EnqueueAnswer, again.body);
    expect(again.body.duplicates).toEqual(["1"]);

    const sub = await t.subscribe(table);
    const delivered = await sub.waitForMessages(4);
    const receipt = (id: string) => delivered.find((m) => m.id === id)!.receipt;
    sub.send({ type: "ack", ids: ["3"], ref: 1 });
    sub.send({ type: "ack", receipts: [receipt("1")], ref: "a" });
    sub.send({ type: "extend", receipts: [receipt("2")], byMs: 5_000, ref: 2 });
    sub.send({ type: "postpone", ids: ["2"], delayMs: 60_000, ref: 3 });
    sub.send({ type: "nonsense" });
    sub.send({ type: "release", receipts: ["999:0"], ref: 4 }); // unknown: nothing released, not stale
    sub.send({ type: "fail", receipts: ["998:0"], reason: "unknown: nothing failed", ref: 6 });
    sub.send({ type: "pause", ref: 5 });
    await waitUntil(() => sub.frames.filter((f) => f.type !== "messages").length >= 9, "the answers to eight frames");
    expect(new Set(sub.frames.map((f) => f.type))).toEqual(
      new Set(["subscribed", "messages", "acked", "extended", "postponed", "error", "released", "failed", "paused"]),
    );
    for (const frame of sub.frames) expectShape(frameSchema(frame), frame);

    expectShape(AckAnswer, (await http(t.base, "POST", `/v1/tables/${table}/ack`, { receipts: [receipt("1")] })).body);
    expectShape(AckAnswer, (await http(t.base, "POST", `/v1/tables/${table}/ack`, { ids: ["1"] })).body);
    expectShape(PostponeAnswer, (await http(t.base, "POST", `/v1/tables/${table}/postpone`, { ids: ["2"], delayMs: 60_000 })).body);
    expectShape(
      PostponeAnswer,
      (await http(t.base, "POST", `/v1/tables/${table}/postpone`, { receipts: [receipt("2")], delayMs: 60_000 })).body,
    );
    expectShape(ExtendAnswer, (await http(t.base, "POST", `/v1/tables/${table}/extend`, { receipts: [receipt("4")], byMs: 100 })).body);
    expectShape(ReleaseAnswer, (await http(t.base, "POST", `/v1/tables/${table}/release`, { receipts: ["999:0"] })).body);
    expectShape(FailAnswer, (await http(t.base, "POST", `/v1/tables/${table}/fail`, { ids: ["998"], reason: "unknown" })).body);
    sub.close();

    // Message 4 was delivered once (maxAttempts 1) and never acked: dead once its ack wait is over.
    const watcher = await t.subscribe(table);
    let dead: { status: number; body: { messages: unknown[] } } = { status: 0, body: { messages: [] } };
    await waitUntil(async () => {
      dead = await http(t.base, "GET", `/v1/tables/${table}/dead?limit=1`);
      return dead.body.messages.length === 1;
    }, "message 4 to be dead-lettered");
    watcher.close();
    expectShape(DeadLetterPageAnswer, dead.body);
    expect(dead.body).toMatchObject({ messages: [{ id: "4", payload: null }] });
    expectShape(RedriveAnswer, (await http(t.base, "POST", `/v1/tables/${table}/redrive`, { all: true })).body);

    // Browsing (built as text around stored payloads too): 4 redriven (ready), 2 postponed (in flight).
    const browsed = await http(t.base, "GET", `/v1/tables/${table}/messages?limit=1`);
    expectShape(BrowsePageAnswer, browsed.body);
    expect(browsed.body).toMatchObject({ messages: [{ id: "4", payload: null }], next: expect.any(String) });
    expectShape(BrowsePageAnswer, (await http(t.base, "GET", `/v1/tables/${table}/messages?cursor=${browsed.body.next}`)).body);
    const one = await http(t.base, "GET", `/v1/tables/${table}/messages/2`);
    expectShape(BrowsedMessageAnswer, one.body);
    expect(one.body).toMatchObject({ id: "2", state: "inFlight", payload: [1, "two"] });

    const hook = await http(t.base, "PUT", `/v1/tables/${table}/webhooks/h1`, { url: "http://127.0.0.1:9/hook", secret: "s" });
    expect(hook.status).toBe(201);
    expectShape(WebhookAnswer, hook.body);
    for (const w of (await http(t.base, "GET", `/v1/tables/${table}/webhooks`)).body.webhooks) expectShape(WebhookAnswer, w);
    expectShape(TableAnswer, (await http(t.base, "GET", `/v1/tables/${table}`)).body);
  });
});
