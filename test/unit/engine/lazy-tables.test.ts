/**
 * Many tables (issue 29): a table nobody uses runs no manager, holds no timer and sends no statement of its
 * own; the engine's sweep looks at a hundred tables a statement; a manager is made when the table is used and
 * released when it has been idle a while, its counters kept.
 */
import { afterEach, describe, expect, it } from "vitest";
import { Engine } from "../../../src/engine/engine.js";
import { SWEEP_CHUNK } from "../../../src/engine/sweeper.js";
import { RELEASE_AFTER_MS } from "../../../src/engine/table-entry.js";
import { FakeClock, settle } from "../../support/fake-clock.js";
import { MemoryStore } from "../../support/memory-store.js";
import { RecordingReceiver } from "../../support/receivers.js";

const POLL_MS = 30_000;
const engines: Engine[] = [];

async function setup(tables: number) {
  const clock = new FakeClock();
  const store = new MemoryStore();
  const engine = new Engine({ store, clock, random: () => 0.5, schemaRefreshMs: 600_000, defaultOptions: { pollIntervalMs: POLL_MS } });
  engines.push(engine);
  await engine.open();
  const names = Array.from({ length: tables }, (_, i) => `t${String(i).padStart(4, "0")}`);
  for (const name of names) await engine.ensureTable(name);
  return { clock, store, engine, names };
}

const message = (id: string, payload = "{}") => ({ id, payload });

afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close()));
});

describe("Engine with many tables", () => {
  it("runs no manager and holds no timer for tables nobody uses; the sweep looks at 100 tables a statement", async () => {
    const one = await setup(1);
    const many = await setup(250);
    await settle();
    expect(many.clock.pendingTimers).toBe(one.clock.pendingTimers); // the engine's own few, whatever the tables
    expect(many.engine.activeManagers).toBe(0);
    await many.clock.advance(1_000); // the first look, a tick after the tables came
    const sweeps = many.store.calls.sweep;
    await many.clock.advance(2 * POLL_MS);
    // Two more looks at every table's acks, in statements of SWEEP_CHUNK tables; no poll, no purge.
    expect(many.store.calls.sweep - sweeps).toBe(2 * Math.ceil(250 / SWEEP_CHUNK));
    expect(many.store.calls.readDue).toBe(0);
    expect(many.store.calls.purge).toBe(0);
    expect(many.clock.pendingTimers).toBe(one.clock.pendingTimers);
  });

  it("releases a manager idle for a while, keeps its counters, and makes it again for an enqueue or a subscriber", async () => {
    const { clock, engine, names } = await setup(3);
    const t = await engine.table(names[0]!);
    await t.enqueue([message("1")]);
    expect(engine.activeManagers).toBe(1);
    await clock.advance(RELEASE_AFTER_MS + 10_000);
    expect(engine.activeManagers).toBe(0);
    expect(t.snapshot().stats.enqueued).toBe(1); // the counters outlive the manager
    const r = new RecordingReceiver();
    const sub = t.subscribe(r); // the same handle makes a new manager, whose first poll finds the message
    await clock.advance(10);
    expect(r.ids).toEqual(["1"]);
    expect(engine.activeManagers).toBe(1);
    await t.ack(["1"]);
    sub.unsubscribe();
    await clock.advance(RELEASE_AFTER_MS + 10_000);
    expect(engine.activeManagers).toBe(0);
    await t.enqueue([message("2")]); // enqueued to a released table, nobody subscribed
    await clock.advance(RELEASE_AFTER_MS + 10_000);
    expect(engine.activeManagers).toBe(0);
    const later = new RecordingReceiver();
    t.subscribe(later);
    await clock.advance(10);
    expect(later.ids).toEqual(["2"]);
    expect(t.snapshot().stats).toMatchObject({ enqueued: 2, acked: 1, sent: 2 });
  });

  it("keeps a manager with a subscriber, or with an operation under way, however long it waits", async () => {
    const { clock, store, engine, names } = await setup(2);
    const a = await engine.table(names[0]!);
    a.subscribe(new RecordingReceiver());
    const b = await engine.table(names[1]!);
    await b.enqueue([message("1")]);
    const release = store.hold("ack");
    const acking = b.ack(["1"]);
    await clock.advance(3 * RELEASE_AFTER_MS);
    expect(engine.activeManagers).toBe(2);
    release();
    expect(await acking).toBe(1);
    await clock.advance(RELEASE_AFTER_MS + 10_000);
    expect(engine.activeManagers).toBe(1); // b's went; a's subscriber keeps its own
  });

  it("purges a table that has no manager in the sweep, and counts it", async () => {
    const { clock, store, engine, names } = await setup(2);
    const old = clock.now() - engine.optionsOf(names[1]!)!.purgeAfterMs - 1_000;
    store.seed(names[1]!, [
      { id: "1", timeAcked: old, timeNext: null },
      { id: "2", timeAcked: old, timeNext: null },
      { id: "3", timeNext: clock.now() + 1e9 },
    ]);
    await clock.advance(POLL_MS + 1_000);
    expect([...store.tables.get(names[1]!)!.rows.keys()]).toEqual(["3"]);
    expect(engine.snapshot(names[1]!)?.stats.purged).toBe(2);
    expect(engine.activeManagers).toBe(0);
  });

  it("delivers rows written behind its back to a subscribed table at the next look, a poll interval after the last", async () => {
    const { clock, store, engine, names } = await setup(150);
    const t = await engine.table(names[120]!);
    const r = new RecordingReceiver();
    t.subscribe(r);
    await clock.advance(10);
    const polls = store.calls.readDue;
    store.seed(names[120]!, [{ id: "7", timeNext: clock.now() }]);
    await clock.advance(POLL_MS - 1_000);
    expect(r.ids).toEqual([]); // nobody said: no look yet, and no poll of its own
    expect(store.calls.readDue).toBe(polls);
    await clock.advance(2_000);
    expect(r.ids).toEqual(["7"]);
  });
});
