import { sql } from "kysely";
import { afterEach, beforeEach, expect, it } from "vitest";
import { Engine } from "../../src/engine/engine.js";
import { msToNs } from "../../src/model/backoff.js";
import { resolveOptions, type TableOptions } from "../../src/options.js";
import { createMysqlStore, type MysqlStore } from "../../src/store/mysql/store.js";
import { describeWithDatabase, uniqueTableName, useOwnDatabase } from "../support/database.js";
import { RecordingReceiver } from "../support/receivers.js";
import { sleep, waitUntil } from "../support/wait.js";

/** Short times so real-clock tests take about a second each. */
const FAST: Partial<TableOptions> = { ackWaitMs: 400, minBackoffMs: 400, pollIntervalMs: 200, batchSize: 10, cacheSize: 100 };

describeWithDatabase("Engine on the database", () => {
  const database = useOwnDatabase("engine_it");
  let store: MysqlStore;
  let engine: Engine;

  beforeEach(async () => {
    store = createMysqlStore(database.url, { connectionLimit: 6 });
    engine = new Engine({ store, schemaRefreshMs: 500 });
    await engine.open();
  });

  afterEach(async () => {
    await engine.close();
    for (const t of await store.discoverTables()) await store.dropTable(t.name);
    await store.close();
  });

  async function table(options: Partial<TableOptions> = FAST): Promise<string> {
    const name = uniqueTableName("eng");
    await engine.ensureTable(name, options);
    return name;
  }

  /** Inserts as another writer would: straight into the table, not through the engine. */
  async function insertDirect(name: string, rows: Array<{ id: string; priority?: number }>) {
    const now = Date.now();
    await store.insertMessages(
      name,
      rows.map((r) => ({ id: r.id, priority: r.priority ?? 50, timeNext: now - 1, payload: `{"id":${r.id}}` })),
    );
  }

  it("delivers a message inserted before anyone subscribed when someone subscribes", async () => {
    const name = await table({ ...FAST, pollIntervalMs: 30_000 });
    await insertDirect(name, [{ id: "1" }, { id: "2" }]);
    const r = new RecordingReceiver();
    await (await engine.table(name)).subscribe(r);
    await waitUntil(() => r.ids.length === 2, "both messages");
    expect(r.batches[0]![0]!.payload).toBe('{"id":1}');
  });

  it("delivers an enqueued message through the cache, not a poll, and a short delay by its timer", async () => {
    const name = await table({ ...FAST, pollIntervalMs: 30_000 });
    const r = new RecordingReceiver();
    await (await engine.table(name)).subscribe(r);
    await sleep(100); // the first subscriber's poll has run (empty table)
    const polls = engine.snapshot(name)!.stats.polls;
    const started = Date.now();
    const { ids } = await (await engine.table(name)).enqueue([{ payload: '"now"' }, { payload: '"later"', delayMs: 300 }]);
    await waitUntil(() => r.ids.length === 1, "the immediate message", 2_000);
    expect(r.ids).toEqual([ids[0]]);
    await waitUntil(() => r.ids.length === 2, "the delayed message", 3_000);
    expect(r.arrivals[1]!.at - started).toBeGreaterThanOrEqual(290);
    expect(engine.snapshot(name)!.stats.polls).toBe(polls); // neither needed a poll
  });

  it("redelivers an unacked message after ack wait plus backoff, with epoch + 1", async () => {
    const name = await table();
    await insertDirect(name, [{ id: "42" }]);
    const r = new RecordingReceiver();
    await (await engine.table(name)).subscribe(r);
    await waitUntil(() => r.arrivals.length === 2, "a redelivery", 5_000);
    const [first, second] = r.arrivals;
    expect([first!.epoch, second!.epoch]).toEqual([0, 1]);
    // ack wait 400 ms + backoff >= minBackoff 400 ms (the clamp), then up to one poll interval.
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(800 - 5);
    // The second delivery's own postpone (epoch 1 -> 2) commits just after the send.
    const epoch = async () => Number((await sql<{ epoch: string }>`SELECT epoch FROM ${sql.table(name)}`.execute(store.db)).rows[0]!.epoch);
    await waitUntil(async () => (await epoch()) === 2, "the second delivery to be recorded", 2_000);
  });

  it("never delivers an acked message again", async () => {
    const name = await table();
    await insertDirect(name, [{ id: "7" }]);
    const handle = await engine.table(name);
    const r = new RecordingReceiver();
    r.onBatch = (batch) => void handle.ack(batch.map((m) => m.id));
    handle.subscribe(r);
    await waitUntil(() => r.ids.length === 1, "the delivery");
    await sleep(1_600); // two ack-wait-plus-backoff periods, eight polls
    expect(r.ids).toEqual(["7"]);
    expect((await (await engine.table(name)).describe()).stats).toMatchObject({ acked: 1, ready: 0, inFlight: 0 });
  });

  it("purges acked rows after purgeAfter", async () => {
    const name = await table({ ...FAST, purgeAfterMs: 300 });
    await insertDirect(name, [{ id: "1" }, { id: "2" }, { id: "3" }]);
    expect(await (await engine.table(name)).ack(["1", "2"])).toBe(2);
    const count = async () => Number((await sql<{ n: string }>`SELECT COUNT(*) AS n FROM ${sql.table(name)}`.execute(store.db)).rows[0]!.n);
    await sleep(150);
    expect(await count()).toBe(3); // not yet: acked less than purgeAfter ago
    await waitUntil(async () => (await count()) === 1, "the acked rows to be purged", 3_000);
    expect(engine.snapshot(name)!.stats.purged).toBe(2);
  });

  it("honours priorities across a backlog larger than the cache", async () => {
    const name = await table({ ...FAST, ackWaitMs: 30_000, minBackoffMs: 30_000, cacheSize: 5, batchSize: 2, pollIntervalMs: 30_000 });
    const priorities = Array.from({ length: 40 }, (_, i) => (i * 37) % 11);
    await insertDirect(
      name,
      priorities.map((p, i) => ({ id: String(i + 1), priority: p })),
    );
    const handle = await engine.table(name);
    const r = new RecordingReceiver();
    r.onBatch = (batch) => void handle.ack(batch.map((m) => m.id));
    handle.subscribe(r);
    await waitUntil(() => r.ids.length >= 40, "all 40 messages", 10_000);
    const delivered = r.batches.flat().map((m) => m.priority);
    expect(delivered).toEqual([...priorities].sort((a, b) => a - b));
    expect(new Set(r.ids).size).toBe(40);
  });

  it("refills a small cache as it drains: cacheSize 2, poll every 30 s, 4 rows arrive in seconds", async () => {
    const name = await table({ ...FAST, cacheSize: 2, batchSize: 1, pollIntervalMs: 30_000, ackWaitMs: 30_000 });
    await insertDirect(name, [{ id: "1" }, { id: "2" }, { id: "3" }, { id: "4" }]);
    const r = new RecordingReceiver();
    await (await engine.table(name)).subscribe(r);
    await waitUntil(() => r.ids.length === 4, "all four rows", 3_000);
    expect([...r.ids].sort()).toEqual(["1", "2", "3", "4"]);
  });

  it("discovers and serves a table made by hand with Vitess's own schema and comment", async () => {
    const name = uniqueTableName("vitess");
    await sql`
      CREATE TABLE ${sql.table(name)} (
        id bigint,
        priority bigint DEFAULT 50 NOT NULL,
        epoch bigint,
        time_next bigint DEFAULT 0,
        time_acked bigint,
        message json,
        PRIMARY KEY (id),
        INDEX poller_idx (time_acked, priority, time_next DESC)
      ) COMMENT 'vitess_message, vt_ack_wait=30, vt_purge_after=120, vt_batch_size=1, vt_cache_size=10, vt_poller_interval=1'
    `.execute(store.db);
    await sql`INSERT INTO ${sql.table(name)} (id, message) VALUES (1, '{"hello":"vitess"}'), (2, '[1,2]')`.execute(store.db);
    await waitUntil(() => engine.has(name), "the engine to discover the table", 3_000);
    expect((await (await engine.table(name)).describe()).options).toEqual(
      resolveOptions({ ackWaitMs: 30_000, purgeAfterMs: 120_000, batchSize: 1, cacheSize: 10, pollIntervalMs: 1_000 }),
    );
    const r = new RecordingReceiver();
    await (await engine.table(name)).subscribe(r);
    await waitUntil(() => r.ids.length === 2, "both rows", 3_000);
    expect(r.batches.map((b) => b.length)).toEqual([1, 1]);
    expect(r.batches.flat().map((m) => JSON.parse(m.payload))).toEqual([{ hello: "vitess" }, [1, 2]]);
    expect(await (await engine.table(name)).ack(["1", "2"])).toBe(2);
    const { rows } = await sql<{ epoch: string; time_acked: string | null }>`
      SELECT epoch, time_acked FROM ${sql.table(name)} ORDER BY id`.execute(store.db);
    expect(rows.map((x) => Number(x.epoch))).toEqual([1, 1]); // NULL epoch counted as 0, then + 1
    expect(rows.every((x) => x.time_acked !== null && BigInt(x.time_acked) > msToNs(Date.now() - 60_000))).toBe(true);
  });

  it("serves a Vitess example table whose message column is VARBINARY, with valid JSON payloads", async () => {
    const name = uniqueTableName("vbin");
    await sql`
      CREATE TABLE ${sql.table(name)} (
        id bigint, priority bigint DEFAULT 50, epoch bigint, time_next bigint DEFAULT 0, time_acked bigint,
        message varbinary(128), PRIMARY KEY (id), INDEX poller_idx (time_acked, priority, time_next DESC)
      ) COMMENT 'vitess_message,vt_ack_wait=30,vt_purge_after=120,vt_batch_size=10,vt_cache_size=10,vt_poller_interval=1'
    `.execute(store.db);
    await sql`INSERT INTO ${sql.table(name)} (id, message) VALUES (1, 'plain text'), (2, '{"a":1}')`.execute(store.db);
    await waitUntil(() => engine.has(name), "the engine to discover the table", 3_000);
    const r = new RecordingReceiver();
    await (await engine.table(name)).subscribe(r);
    await waitUntil(() => r.ids.length === 2, "both rows", 3_000);
    const byId = Object.fromEntries(r.batches.flat().map((m) => [m.id, JSON.parse(m.payload)]));
    expect(byId).toEqual({ "1": "plain text", "2": { a: 1 } });
  });

  it("is idempotent by id", async () => {
    const name = await table();
    expect(await (await engine.table(name)).enqueue([{ id: "5", payload: "1" }])).toEqual({ ids: ["5"], duplicates: [] });
    expect(
      await (
        await engine.table(name)
      ).enqueue([
        { id: "5", payload: "2" },
        { id: "6", payload: "3" },
      ]),
    ).toEqual({
      ids: ["5", "6"],
      duplicates: ["5"],
    });
    expect((await (await engine.table(name)).describe()).stats.ready).toBe(2);
  });

  it("follows an option change made elsewhere and a drop", async () => {
    const name = await table();
    await sql`ALTER TABLE ${sql.table(name)} COMMENT = 'vitess_message,vt_ack_wait=2,vt_batch_size=3'`.execute(store.db);
    await waitUntil(async () => (await engine.table(name)).options.batchSize === 3, "the new options", 3_000);
    expect((await engine.table(name)).options.ackWaitMs).toBe(2_000);
    const r = new RecordingReceiver();
    await (await engine.table(name)).subscribe(r);
    await sql`DROP TABLE ${sql.table(name)}`.execute(store.db);
    await waitUntil(() => !engine.has(name), "the engine to forget the table", 3_000);
    expect(r.closedWith).toBe("table dropped");
  });
});
