/** The client library against the real server and database, over real sockets. */
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { TablemqClient } from "../../src/client/client.js";
import { TablemqError } from "../../src/client/http.js";
import type { Message, Subscription } from "../../src/client/subscription.js";
import { loadConfig } from "../../src/server/config.js";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { describeEachStore, uniqueTableName, useOwnStoreDatabase } from "../support/database.js";
import { sleep, waitUntil } from "../support/wait.js";

const FAST = { ackWaitMs: 600, minBackoffMs: 600, pollIntervalMs: 200 };

/** Rejects when `promise` takes longer than `ms`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function take<T>(it: AsyncIterator<Message<T>>, n: number, ms = 5_000): Promise<Array<Message<T>>> {
  const out: Array<Message<T>> = [];
  while (out.length < n) {
    const r = await within(it.next(), ms, `message ${out.length + 1} of ${n}`);
    if (r.done) throw new Error(`the subscription ended after ${out.length} of ${n} messages`);
    out.push(r.value);
  }
  return out;
}

describeEachStore("client end to end", (kind) => {
  const database = useOwnStoreDatabase(kind, "client_e2e");
  let server: RunningServer;
  let client: TablemqClient;
  const subs: Array<{ close(): Promise<void> }> = [];
  const config = (port = 0, databaseUrl = database.url) => loadConfig({}, { port, databaseUrl, logLevel: "silent" });

  beforeAll(async () => {
    server = await startServer(config());
    client = new TablemqClient({ url: server.url, timeoutMs: 5_000 });
  });
  afterEach(async () => {
    await Promise.all(subs.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await server?.close();
  });

  const track = <T>(sub: Subscription<T>): Subscription<T> => {
    subs.push(sub);
    return sub;
  };
  const newTable = async (options: object = FAST) => {
    const table = uniqueTableName("cl");
    expect((await client.createTable(table, options)).created).toBe(true);
    return table;
  };
  const stats = async (table: string) => (await client.describeTable(table)).stats;

  it("round-trips table admin: create, change, list, describe, drop", async () => {
    const table = uniqueTableName("admin");
    const made = await client.createTable(table, { ackWaitMs: 700, batchSize: 5 });
    expect(made.created).toBe(true);
    expect(made.table).toMatchObject({ name: table, options: { ackWaitMs: 700, minBackoffMs: 700, batchSize: 5 } });
    const changed = await client.createTable(table, { batchSize: 7 });
    expect(changed.created).toBe(false);
    expect(changed.table.options).toMatchObject({ ackWaitMs: 700, batchSize: 7 });
    expect((await client.listTables()).map((t) => t.name)).toContain(table);
    expect(await client.describeTable(table)).toMatchObject({
      name: table,
      stats: { ready: 0, delayed: 0, inFlight: 0, acked: 0, dead: 0, receivers: 0, cached: 0 },
    });
    await client.dropTable(table);
    await expect(client.describeTable(table)).rejects.toMatchObject({ status: 404, code: "table_not_found" });
    expect((await client.listTables()).map((t) => t.name)).not.toContain(table);
  });

  it("surfaces API errors as TablemqError with status and code", async () => {
    const missing = uniqueTableName("missing");
    const notFound = await client.publish(missing, [{ payload: 1 }]).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(TablemqError);
    expect(notFound).toMatchObject({ status: 404, code: "table_not_found" });

    const table = await newTable();
    const badPriority = await client.publish(table, [{ payload: 1, priority: 300 }]).catch((e: unknown) => e);
    expect(badPriority).toMatchObject({ status: 400, code: "validation_failed" });
    expect((badPriority as Error).message).toContain("priority");

    await expect(client.createTable(table, { ackWaitMs: -1 })).rejects.toMatchObject({ status: 400, code: "validation_failed" });
    await expect(client.ack(table, ["not-an-id"])).rejects.toMatchObject({ status: 400, code: "validation_failed" });
    await expect(client.dropTable(missing)).rejects.toMatchObject({ status: 404, code: "table_not_found" });
  });

  it("publishes idempotently by id", async () => {
    const table = await newTable();
    expect(
      await client.publish(table, [
        { id: "11", payload: "a" },
        { id: "12", payload: "b" },
      ]),
    ).toEqual({ ids: ["11", "12"], duplicates: [] });
    expect(
      await client.publish(table, [
        { id: "12", payload: "b" },
        { id: "13", payload: "c" },
      ]),
    ).toEqual({ ids: ["12", "13"], duplicates: ["12"] });
    expect((await stats(table)).ready).toBe(3);
  });

  it("publishes, receives over the socket (iterator) and acks over the socket", async () => {
    const table = await newTable();
    const sub = track(client.subscribe<{ order: number }>(table, { maxInFlight: 10 }));
    const it = sub[Symbol.asyncIterator]();
    const { ids } = await client.publish(table, [{ payload: { order: 1 } }, { payload: { order: 2 }, priority: 10 }]);
    const got = await take(it, 2);
    expect(got.map((m) => m.id).sort()).toEqual([...ids].sort());
    expect(got.find((m) => m.id === ids[0])!.toJSON()).toEqual({
      id: ids[0],
      priority: 50,
      epoch: 0,
      receipt: `${ids[0]}:0`,
      payload: { order: 1 },
    });
    for (const m of got) m.ack();
    await sub.flush();
    await waitUntil(async () => (await stats(table)).acked === 2, "both acked", 3_000);
    // Past ack wait + backoff: an acked message does not come back.
    await sleep(1_500);
    const more = await Promise.race([it.next().then(() => "message"), sleep(100).then(() => "nothing")]);
    expect(more).toBe("nothing");
    expect(sub.subscribedInfo).toMatchObject({ table, ackWaitMs: 600, maxInFlight: 10 });
  });

  it("callback mode acks each message once its handler resolves", async () => {
    const table = await newTable();
    const seen: unknown[] = [];
    track(client.subscribe(table, { onMessage: (msg) => void seen.push(msg.payload) }));
    await client.publish(table, [{ payload: 1 }, { payload: 2 }, { payload: 3 }]);
    await waitUntil(() => seen.length === 3, "three messages", 5_000);
    await waitUntil(async () => (await stats(table)).acked === 3, "three acks", 3_000);
    expect([...seen].sort()).toEqual([1, 2, 3]);
  });

  it("callback mode postpones a message whose handler throws; it comes back and is acked", async () => {
    const table = await newTable();
    const epochs: number[] = [];
    const errors: string[] = [];
    const sub = track(
      client.subscribe(table, {
        onMessage: (msg) => {
          epochs.push(msg.epoch);
          if (msg.epoch === 0) throw new Error("not yet");
        },
      }),
    );
    sub.on("error", (err) => errors.push(err.message));
    await client.publish(table, { payload: "retry me" });
    await waitUntil(async () => (await stats(table)).acked === 1, "acked on the second delivery", 8_000);
    expect(epochs[0]).toBe(0);
    expect(epochs.at(-1)!).toBeGreaterThanOrEqual(1);
    expect(errors[0]).toBe("not yet");
  });

  it("a postpone with a delay redelivers after that delay", async () => {
    // A long ack wait: only the postpone can bring the message back soon.
    const table = await newTable({ ...FAST, ackWaitMs: 30_000, minBackoffMs: 30_000 });
    const sub = track(client.subscribe(table));
    const it = sub[Symbol.asyncIterator]();
    await client.publish(table, { payload: "later" });
    const [first] = await take(it, 1);
    const postponedAt = Date.now();
    first!.postpone(400);
    const [again] = await take(it, 1, 5_000);
    expect(Date.now() - postponedAt).toBeGreaterThanOrEqual(390);
    expect(again!.id).toBe(first!.id);
    expect(again!.payload).toBe("later");
    again!.ack();
    await sub.flush();
    await waitUntil(async () => (await stats(table)).acked === 1, "acked", 3_000);
  });

  it("acks and postpones over HTTP too", async () => {
    const table = await newTable();
    const { ids } = await client.publish(table, [{ payload: 1 }, { payload: 2 }]);
    expect(await client.postpone(table, [ids[1]!], 60_000)).toBe(1);
    expect(await client.ack(table, ids)).toBe(2);
    expect(await client.ack(table, ids)).toBe(0);
    expect(await client.postpone(table, ids)).toBe(0);
  });

  it("subscribing to a missing table fails for good with table_not_found", async () => {
    const sub = track(client.subscribe(uniqueTableName("nosuch")));
    const reconnects: number[] = [];
    sub.on("reconnecting", (i) => reconnects.push(i.attempt));
    await expect(within(sub[Symbol.asyncIterator]().next(), 5_000, "the failure")).rejects.toMatchObject({
      status: 404,
      code: "table_not_found",
    });
    expect(reconnects).toEqual([]);
  });

  it("reconnects when the server restarts on the same port and keeps receiving", async () => {
    const apart = database.apart("restart");
    const first = await startServer(config(0, apart));
    let second: RunningServer | undefined;
    try {
      const c = new TablemqClient({ url: first.url, timeoutMs: 5_000 });
      const table = uniqueTableName("restart");
      await c.createTable(table, FAST);
      const sub = track(c.subscribe<string>(table, { reconnect: { minDelayMs: 50, maxDelayMs: 500 } }));
      const events: string[] = [];
      sub.on("subscribed", () => events.push("subscribed"));
      sub.on("reconnecting", () => events.push("reconnecting"));
      const it = sub[Symbol.asyncIterator]();
      await c.publish(table, { payload: "before" });
      const [before] = await take(it, 1);
      before!.ack();
      await sub.flush();
      await waitUntil(async () => (await c.describeTable(table)).stats.acked === 1, "the first ack", 3_000);

      await first.close();
      await waitUntil(() => events.includes("reconnecting"), "the drop to be noticed", 3_000);
      second = await startServer(config(first.port, apart));
      await waitUntil(() => sub.connected, "the reconnect", 8_000);
      await c.publish(table, { payload: "after" });
      const [after] = await take(it, 1);
      expect(after!.payload).toBe("after");
      after!.ack();
      await sub.flush();
      await waitUntil(async () => (await c.describeTable(table)).stats.acked === 2, "the second ack", 3_000);
      expect(events.filter((e) => e === "subscribed")).toHaveLength(2);
    } finally {
      await Promise.all(subs.splice(0).map((s) => s.close()));
      await first.close();
      await second?.close();
    }
  });
});
