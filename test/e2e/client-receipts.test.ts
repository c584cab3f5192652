/** The client's receipts against the real server and database: msg.extend, autoExtend, fenced acks. */
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { TablemqClient } from "../../src/client/client.js";
import type { Message, Subscription } from "../../src/client/subscription.js";
import type { StaleInfo } from "../../src/client/types.js";
import type { RunningServer } from "../../src/server/server.js";
import { describeEachStore, uniqueTableName, useOwnStoreDatabase } from "../support/database.js";
import { startTestServer } from "../support/server.js";
import { sleep, waitUntil } from "../support/wait.js";

/** A message not acked within 600 ms is due again after about 600 ms of backoff, found by a 200 ms poll. */
const FAST = { ackWaitMs: 600, minBackoffMs: 600, pollIntervalMs: 200, batchSize: 10 };

describeEachStore("client receipts end to end", (kind) => {
  const database = useOwnStoreDatabase(kind, "client_rcpt_e2e");
  let server: RunningServer;
  let client: TablemqClient;
  const subs: Array<Subscription<unknown>> = [];

  beforeAll(async () => {
    server = await startTestServer(database.url);
    client = new TablemqClient({ url: server.url, timeoutMs: 5_000 });
  });
  afterEach(async () => {
    await Promise.all(subs.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await server?.close();
  });

  const track = (sub: Subscription<unknown>) => {
    subs.push(sub);
    return sub;
  };
  const newTable = async () => {
    const table = uniqueTableName("clrc");
    expect((await client.createTable(table, FAST)).created).toBe(true);
    return table;
  };
  const stats = async (table: string) => (await client.describeTable(table)).stats;
  /** Collects what an iterator yields, in the background. */
  const collect = (sub: Subscription<unknown>) => {
    const got: Message[] = [];
    void (async () => {
      for await (const m of sub) got.push(m);
    })().catch(() => {});
    return got;
  };

  it("msg.extend keeps a slow consumer's message from redelivery; its unextended batch-mate is redelivered", async () => {
    const table = await newTable();
    const sub = track(client.subscribe(table));
    const got = collect(sub);
    const { ids } = await client.publish(table, [{ payload: "kept" }, { payload: "lapsed" }]);
    const [kept, lapsed] = ids;
    await waitUntil(() => got.length === 2, "both messages");
    const first = (id: string) => got.find((m) => m.id === id)!;
    expect(first(kept!).receipt).toEqual(expect.any(String));
    expect(sub.connected).toBe(true); // so the extension goes over the socket
    expect(await first(kept!).extend(4_000)).toBe(true);

    await waitUntil(() => got.some((m) => m.id === lapsed && m.epoch === 1), "the unextended message to come back", 5_000);
    await sleep(1_000); // well past the ack wait plus backoff the extended one would have had
    expect(got.filter((m) => m.id === kept)).toHaveLength(1);

    // The lapsed message's first delivery is stale now: it cannot be extended; the current one can.
    expect(await first(lapsed!).extend(4_000)).toBe(false);
    const again = got.find((m) => m.id === lapsed && m.epoch === 1)!;
    expect(await again.extend(4_000)).toBe(true);
    // Over HTTP too, by receipt.
    expect(await client.extend(table, [first(kept!).receipt, first(lapsed!).receipt], 4_000)).toEqual({
      extended: 1,
      stale: [first(lapsed!).receipt],
      unchanged: [],
    });
    first(kept!).ack();
    again.ack();
    await sub.flush();
    await waitUntil(async () => (await stats(table)).acked === 2, "both acked", 3_000);
    expect(await first(kept!).extend(1_000)).toBe(false); // settled
  });

  it("autoExtend keeps a handler that runs longer than the ack wait from seeing a redelivery (and without it, one comes)", async () => {
    const HANDLER_MS = 2_500; // four ack waits
    const run = async (autoExtend: boolean) => {
      const table = await newTable();
      const handled: number[] = [];
      const handler = track(
        client.subscribe(table, {
          ...(autoExtend ? { autoExtend: true } : {}),
          onMessage: async (msg) => {
            handled.push(msg.epoch);
            await sleep(HANDLER_MS);
          },
        }),
      );
      const stale: StaleInfo[] = [];
      handler.on("stale", (info) => stale.push(info));
      await waitUntil(() => handler.connected, "the handler's subscription");
      await client.publish(table, { payload: "slow" });
      await waitUntil(() => handled.length === 1, "the handler to start");
      // A second consumer: a redelivery goes to it (it has not had the message).
      const watcher = track(client.subscribe(table));
      const watched = collect(watcher);
      await waitUntil(() => watcher.connected, "the watcher's subscription");
      await waitUntil(async () => (await stats(table)).acked === 1, "the handler's ack", HANDLER_MS + 3_000);
      return { handled, watched: watched.map((m) => m.epoch), stale };
    };
    const [extended, plain] = await Promise.all([run(true), run(false)]);
    expect(extended).toEqual({ handled: [0], watched: [], stale: [] });
    expect(plain.watched.length).toBeGreaterThanOrEqual(1);
    expect(plain.watched[0]).toBeGreaterThanOrEqual(1);
  });

  it("a fenced ack from a stale consumer does not ack the redelivered message", async () => {
    const table = await newTable();
    const slow = track(client.subscribe(table, { fenced: true, maxInFlight: 1 }));
    const stale: StaleInfo[] = [];
    slow.on("stale", (info) => stale.push(info));
    const slowGot = collect(slow);
    const { ids } = await client.publish(table, { payload: "contended" });
    await waitUntil(() => slowGot.length === 1, "the first delivery");

    const fast = track(client.subscribe(table)); // the slow one holds its credit: the redelivery goes here
    const fastGot = collect(fast);
    await waitUntil(() => fastGot.length === 1, "the redelivery", 5_000);
    expect(fastGot[0]).toMatchObject({ id: ids[0], epoch: 1 });

    slowGot[0]!.ack(); // too late: the message was delivered again since
    await waitUntil(() => stale.length === 1, "the stale event");
    expect(stale).toEqual([{ kind: "ack", receipts: [slowGot[0]!.receipt] }]);
    expect(await stats(table)).toMatchObject({ acked: 0 });

    fastGot[0]!.ack();
    await fast.flush();
    await waitUntil(async () => (await stats(table)).acked === 1, "the current holder's ack", 3_000);
  });
});
