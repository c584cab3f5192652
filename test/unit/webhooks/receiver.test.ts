/**
 * Webhook receivers through the registry, on a real Engine over the in-memory store, with fake time and a
 * fake transport (no network): what is POSTed, when, and what happens to the messages in the table.
 */
import { afterEach, describe, expect, it } from "vitest";
import { Engine } from "../../../src/engine/engine.js";
import type { TableOptions } from "../../../src/options.js";
import { receiptOf } from "../../../src/receipts.js";
import { WebhookRegistry } from "../../../src/webhooks/registry.js";
import { SIGNATURE_HEADER, verify } from "../../../src/webhooks/signature.js";
import type { WebhookRequest, WebhookResponse } from "../../../src/webhooks/transport.js";
import { FakeClock, settle } from "../../support/fake-clock.js";
import { MemoryStore } from "../../support/memory-store.js";
import { RecordingReceiver } from "../../support/receivers.js";
import type { WebhookPostBody } from "../../../src/wire.js";

const T = "orders";
const URL_A = "http://127.0.0.1:9/hook";

interface Posted {
  at: number;
  url: string;
  headers: Record<string, string>;
  body: string;
  json: WebhookPostBody;
}

/** A transport that records each request and answers as `answer` says (a status, or a promise of one). */
class FakeTransport {
  readonly posted: Posted[] = [];
  answer: (req: Posted, signal: AbortSignal) => number | Promise<number> = () => 200;

  constructor(private readonly clock: FakeClock) {}

  readonly send = async (req: WebhookRequest): Promise<WebhookResponse> => {
    const posted: Posted = { at: this.clock.now(), url: req.url, headers: req.headers, body: req.body, json: JSON.parse(req.body) };
    this.posted.push(posted);
    const status = await this.answer(posted, req.signal);
    return { status, text: status >= 300 ? "nope" : "" };
  };

  ids(): string[][] {
    return this.posted.map((p) => p.json.messages.map((m) => m.id));
  }
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

async function setup(options: Partial<TableOptions> = {}, store = new MemoryStore()) {
  const clock = new FakeClock();
  const engine = new Engine({ store, clock, random: () => 0.5, schemaRefreshMs: 60_000 });
  await engine.open();
  await engine.ensureTable(T, { ackWaitMs: 1_000, pollIntervalMs: 500, batchSize: 10, ...options });
  const transport = new FakeTransport(clock);
  let n = 0;
  const registry = new WebhookRegistry({
    engine,
    store,
    clock,
    retry: { minDelayMs: 1_000, maxDelayMs: 8_000 },
    transport: transport.send,
    newDeliveryId: () => `d${++n}`,
  });
  await registry.open();
  closers.push(async () => {
    await registry.close();
    await engine.close();
  });
  /** One request with `count` messages (ids ascending); returns the ids. */
  const enqueue = async (count: number) =>
    (await (await engine.table(T)).enqueue(Array.from({ length: count }, (_, i) => ({ payload: JSON.stringify({ n: i }) })))).ids;
  const row = (id: string) => store.row(T, id)!;
  return { clock, store, engine, registry, transport, enqueue, row };
}

describe("webhook receiver", () => {
  it("POSTs a batch as JSON, signed when there is a secret, and acks it on a 2xx", async () => {
    const { registry, transport, enqueue, row, clock } = await setup();
    await registry.put(T, "billing", { url: URL_A, secret: "s3cret" });
    const ids = await enqueue(3);
    await clock.advance(10);
    const all = transport.posted.flatMap((p) => p.json.messages.map((m) => m.id));
    expect(all).toEqual(ids);
    const first = transport.posted[0]!;
    expect(first.url).toBe(URL_A);
    expect(first.json).toMatchObject({ table: T, webhook: "billing", delivery: "d1", attempt: 1, sentAt: clock.now() - 10 });
    expect(first.json.messages[0]).toEqual({
      id: ids[0],
      priority: 50,
      epoch: 0,
      receipt: receiptOf({ id: ids[0]!, epoch: 0 }),
      payload: { n: 0 },
    });
    expect(first.headers["content-type"]).toBe("application/json");
    expect(verify("s3cret", first.body, first.headers[SIGNATURE_HEADER])).toBe(true);
    for (const id of ids) expect(row(id).timeAcked).not.toBeNull();
  });

  it("sends no signature header without a secret", async () => {
    const { registry, transport, enqueue, clock } = await setup();
    await registry.put(T, "plain", { url: URL_A });
    await enqueue(1);
    await clock.advance(10);
    expect(transport.posted).toHaveLength(1);
    expect(transport.posted[0]!.headers[SIGNATURE_HEADER]).toBeUndefined();
  });

  it("keeps one POST in flight per destination, batches in order", async () => {
    const { registry, transport, enqueue, clock } = await setup({ batchSize: 2 });
    const answers: Array<(status: number) => void> = [];
    transport.answer = () => new Promise<number>((resolve) => answers.push(resolve));
    await registry.put(T, "slow", { url: URL_A, batchSize: 2 });
    const ids = await enqueue(6);
    await clock.advance(10);
    for (let k = 1; k <= 3; k++) {
      expect(transport.posted).toHaveLength(k); // the next POST waits for this one's answer
      answers[k - 1]!(204);
      await clock.advance(10);
    }
    expect(transport.ids()).toEqual([ids.slice(0, 2), ids.slice(2, 4), ids.slice(4, 6)]);
  });

  it("marks a failing destination down and retries the same batch with doubling backoff, then up and in order", async () => {
    const { registry, transport, enqueue, clock, engine } = await setup({ batchSize: 2 });
    let failures = 3;
    transport.answer = () => (failures-- > 0 ? 500 : 200);
    await registry.put(T, "flaky", { url: URL_A, batchSize: 2 });
    const ids = await enqueue(5);
    await clock.advance(10);
    expect(transport.posted).toHaveLength(1);
    const down = await registry.get(T, "flaky");
    expect(down).toMatchObject({ state: "down", lastError: "HTTP 500: nope", failures: 1, held: 2 });
    expect(down.nextRetryAt).toBe(transport.posted[0]!.at + 1_000);
    expect((await (await engine.table(T)).describe()).stats.receivers).toBe(1);
    await clock.advance(8_000);
    const attempts = transport.posted.slice(0, 4);
    expect(attempts.map((p) => p.json.delivery)).toEqual(["d1", "d1", "d1", "d1"]); // the same batch each time
    expect(attempts.map((p) => p.json.attempt)).toEqual([1, 2, 3, 4]);
    const gaps = attempts.slice(1).map((p, i) => p.at - attempts[i]!.at);
    expect(gaps).toEqual([1_000, 2_000, 4_000]);
    // After the success the rest goes out at once, in order.
    expect(transport.posted.slice(4).every((p) => p.at === attempts[3]!.at)).toBe(true);
    const delivered = transport.posted.filter((_, i) => i >= 3).flatMap((p) => p.json.messages.map((m) => m.id));
    expect(delivered).toEqual(ids);
    expect(await registry.get(T, "flaky")).toMatchObject({
      state: "up",
      failures: 0,
      held: 0,
      lastError: "HTTP 500: nope",
      nextRetryAt: null,
    });
  });

  it("counts a POST that does not answer within timeoutMs as failed", async () => {
    const { registry, transport, enqueue, clock } = await setup();
    const aborted: boolean[] = [];
    transport.answer = (_req, signal) =>
      new Promise((_resolve, reject) => signal.addEventListener("abort", () => (aborted.push(true), reject(new Error("aborted")))));
    await registry.put(T, "hung", { url: URL_A, timeoutMs: 300 });
    await enqueue(1);
    await clock.advance(299);
    expect((await registry.get(T, "hung")).state).toBe("up");
    await clock.advance(1);
    expect(aborted).toEqual([true]);
    expect(await registry.get(T, "hung")).toMatchObject({ state: "down", lastError: "timed out after 300 ms" });
  });

  it("keeps the held messages leased while the destination is down, so other subscribers do not get them", async () => {
    const { registry, transport, enqueue, clock, engine, row } = await setup({ ackWaitMs: 1_000, minBackoffMs: 1_000 });
    transport.answer = () => 503;
    await registry.put(T, "down", { url: URL_A });
    const ids = await enqueue(3);
    await clock.advance(10);
    const other = new RecordingReceiver(100);
    await (await engine.table(T)).subscribe(other);
    await clock.advance(20_000); // twenty ack waits
    expect(other.ids).toEqual([]);
    for (const id of ids) expect(row(id).timeNext!).toBeGreaterThan(clock.now());
    expect((await registry.get(T, "down")).held).toBe(3);
  });

  it("draws no more messages while down than the batch it holds", async () => {
    const { registry, transport, enqueue, clock } = await setup({ batchSize: 10 });
    transport.answer = () => 500;
    await registry.put(T, "partial", { url: URL_A, batchSize: 10 });
    await enqueue(3);
    await clock.advance(10);
    await enqueue(4);
    await clock.advance(10);
    expect((await registry.get(T, "partial")).held).toBe(3);
  });

  it("retries the ack, not the POST, when the database refuses the ack after a 2xx", async () => {
    const { registry, transport, enqueue, clock, store, row } = await setup();
    await registry.put(T, "acks", { url: URL_A });
    store.failNext("ack", 2);
    const [id] = await enqueue(1);
    await clock.advance(10);
    expect(transport.posted).toHaveLength(1);
    expect(row(id!).timeAcked).toBeNull();
    expect(await registry.get(T, "acks")).toMatchObject({ state: "up", lastError: expect.stringMatching(/^ack failed/) });
    await clock.advance(3_000); // retries after 1 s, then 2 s
    expect(transport.posted).toHaveLength(1);
    expect(row(id!).timeAcked).not.toBeNull();
  });

  it("drops held messages whose delivery is no longer current, and is up when nothing is left", async () => {
    const { registry, transport, enqueue, clock, store } = await setup({ ackWaitMs: 1_000 });
    transport.answer = () => 500;
    await registry.put(T, "stale", { url: URL_A, batchSize: 10 });
    const ids = await enqueue(2);
    await clock.advance(10);
    for (const id of ids) store.row(T, id)!.epoch += 1; // delivered again elsewhere
    await clock.advance(600); // the lease keeper runs (every half ack wait) and finds them stale
    expect((await registry.get(T, "stale")).held).toBe(0);
    await clock.advance(1_000); // the retry finds nothing left to send
    expect(transport.posted).toHaveLength(1);
    expect((await registry.get(T, "stale")).state).toBe("up");
  });

  it("retries at once with a changed configuration", async () => {
    const { registry, transport, enqueue, clock } = await setup();
    transport.answer = (req) => (req.url === URL_A ? 404 : 200);
    await registry.put(T, "moved", { url: URL_A });
    await enqueue(1);
    await clock.advance(10);
    expect((await registry.get(T, "moved")).state).toBe("down");
    await registry.put(T, "moved", { url: "http://127.0.0.1:9/new" });
    await clock.advance(1);
    expect(transport.posted.map((p) => p.url)).toEqual([URL_A, "http://127.0.0.1:9/new"]);
    expect((await registry.get(T, "moved")).state).toBe("up");
  });

  it("hands held messages back to the table, due now, when the webhook is deleted", async () => {
    const { registry, transport, enqueue, clock, row } = await setup({ ackWaitMs: 30_000 });
    transport.answer = () => 500;
    await registry.put(T, "gone", { url: URL_A });
    const [id] = await enqueue(1);
    await clock.advance(10);
    expect(row(id!).timeNext!).toBeGreaterThan(clock.now());
    await registry.remove(T, "gone");
    expect(row(id!).timeNext!).toBeLessThanOrEqual(clock.now());
    await expect(registry.get(T, "gone")).rejects.toMatchObject({ code: "webhook_not_found" });
  });

  it("lets a POST in flight finish and acks it on a graceful close", async () => {
    const { registry, transport, enqueue, clock, row } = await setup();
    let answer!: (status: number) => void;
    transport.answer = () => new Promise<number>((resolve) => (answer = resolve));
    await registry.put(T, "closing", { url: URL_A });
    const [id] = await enqueue(1);
    await clock.advance(10);
    const closed = registry.close();
    await settle();
    answer(200);
    await closed;
    expect(row(id!).timeAcked).not.toBeNull();
  });
});

describe("webhook registry", () => {
  it("deletes a dropped table's webhooks, and keeps those of a table that is still there", async () => {
    const { registry, engine, store } = await setup();
    await registry.put(T, "a", { url: URL_A });
    await engine.ensureTable("other", {});
    await registry.put("other", "b", { url: URL_A });
    await engine.dropTable(T);
    await settle();
    expect([...store.webhooks.values()].map((c) => `${c.table}/${c.name}`)).toEqual(["other/b"]);
    await engine.ensureTable(T, {});
    await expect(registry.list(T)).resolves.toEqual([]);
  });

  it("loads the stored webhooks at open and subscribes them as their tables open; prunes those of missing tables", async () => {
    const store = new MemoryStore();
    const now = Date.now();
    await store.putWebhook({
      table: T,
      name: "kept",
      url: URL_A,
      batchSize: 5,
      timeoutMs: 1_000,
      secret: "x",
      createdAt: now,
      updatedAt: now,
    });
    await store.putWebhook({ table: "vanished", name: "old", url: URL_A, batchSize: 5, timeoutMs: 1_000, createdAt: now, updatedAt: now });
    const { registry, engine, transport, enqueue, clock } = await setup({}, store);
    expect([...store.webhooks.values()].map((c) => c.table)).toEqual([T]);
    expect(await registry.list(T)).toEqual([expect.objectContaining({ name: "kept", batchSize: 5, hasSecret: true, state: "up" })]);
    expect(JSON.stringify(await registry.list(T))).not.toContain('"x"');
    expect((await (await engine.table(T)).describe()).stats.receivers).toBe(1);
    await enqueue(1);
    await clock.advance(10);
    expect(transport.posted).toHaveLength(1);
  });

  it("refuses a webhook for an unknown table and writes nothing", async () => {
    const { registry, store } = await setup();
    await expect(registry.put("nope", "a", { url: URL_A })).rejects.toMatchObject({ code: "table_not_found" });
    expect(store.webhooks.size).toBe(0);
  });
});
