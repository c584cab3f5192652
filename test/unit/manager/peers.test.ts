/**
 * A manager among several nodes (issue 25), with a fake clock: two managers on one store never send a row
 * twice (claims); a manager tells the others of rows it may not deliver itself (signalDue), and acts on
 * what they tell it (peerDue), on its poll cap and on a peer's death.
 */
import { Semaphore } from "async-mutex";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../../src/logger.js";
import { HOLD_MS } from "../../../src/manager/holds.js";
import { MessageManager } from "../../../src/manager/manager.js";
import { resolveOptions } from "../../../src/options.js";
import { FakeClock, settle } from "../../support/fake-clock.js";
import { closeManagers, MANAGER_TABLE, managerSetup } from "../../support/manager.js";
import { MemoryStore } from "../../support/memory-store.js";
import { RecordingReceiver } from "../../support/receivers.js";

const T = MANAGER_TABLE;
const OPTIONS = { ackWaitMs: 1_000, minBackoffMs: 500, pollIntervalMs: 30_000, batchSize: 5 };

afterEach(closeManagers);

describe("a manager among several nodes", () => {
  it("two nodes on one table send each due row once: the claim another node won is not sent", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock();
    const options = resolveOptions(OPTIONS);
    await store.createTable(T, options);
    store.seed(
      T,
      Array.from({ length: 40 }, (_, i) => ({ id: String(i + 1), timeNext: clock.now() - 1_000 })),
    );
    const node = () => {
      const m = new MessageManager(T, options, { store, clock, random: Math.random, semaphore: new Semaphore(4), log: silentLogger });
      m.open();
      const r = new RecordingReceiver();
      r.onBatch = (batch) => void m.ack(batch.map((row) => row.id));
      m.subscribe(r);
      return { m, r };
    };
    const a = node();
    const b = node();
    await clock.advance(10); // both poll, both read all 40 rows
    await settle(50);
    const sent = [...a.r.ids, ...b.r.ids];
    expect(sent.sort()).toEqual(Array.from({ length: 40 }, (_, i) => String(i + 1)).sort());
    expect(a.m.stats.sent + b.m.stats.sent).toBe(40);
    expect(a.m.stats.claimsLost + b.m.stats.claimsLost).toBeGreaterThan(0); // they did contend
    await Promise.all([a.m.close(), b.m.close()]);
  });

  it("tells other nodes of rows it may not deliver: committed unleased or delayed, released, rescheduled", async () => {
    const signals: Array<number | undefined> = [];
    const { m, clock } = managerSetup({ ...OPTIONS, maxAttempts: 0 }, 4, new MemoryStore(), { signalDue: (at) => signals.push(at) });
    // Nobody subscribed here: rows due now, and a delayed one, are someone else's to deliver.
    await m.enqueue([{ payload: "1" }, { payload: "2", delayMs: 5_000 }]);
    await settle();
    expect(signals).toEqual([undefined, clock.now() + 5_000]);

    // A subscriber with credit: the rows are leased to it at insert, nobody else is told.
    signals.length = 0;
    const r = new RecordingReceiver(10);
    m.subscribe(r);
    await clock.advance(10);
    const { ids } = await m.enqueue([{ payload: "3" }]);
    await settle();
    expect(r.ids).toContain(ids[0]);
    expect(signals).toEqual([]);

    // Handed back: due now; postponed with a delay: due then.
    const [delivery] = r.batches.flat().filter((row) => row.id === ids[0]);
    await m.releaseDeliveries([{ id: delivery!.id, epoch: delivery!.epoch }]);
    expect(signals).toEqual([clock.now() + 1]);
    signals.length = 0;
    await m.reschedule([ids[0]!], 2_000);
    expect(signals).toEqual([clock.now() + 2_000]);
  });

  it("polls at a peer's word while its receivers are starved for work, not while they are busy", async () => {
    const { m, clock, seed, store } = managerSetup(OPTIONS);
    const r = new RecordingReceiver(4);
    m.subscribe(r);
    await clock.advance(10);
    const polls = () => store.calls.readDue;
    const before = polls();
    seed(3); // written by another node
    m.peerDue();
    await settle();
    expect(polls()).toBeGreaterThan(before);
    expect(r.ids).toEqual(["1", "2", "3"]);

    // 3 of 4 held: busy. A word from a peer reads nothing (the rows are likely in that peer's cache).
    store.seed(T, [
      { id: "4", timeNext: clock.now() - 1 },
      { id: "5", timeNext: clock.now() - 1 },
    ]);
    const busy = polls();
    m.peerDue();
    await settle();
    expect(polls()).toBe(busy);
    expect(r.ids).toEqual(["1", "2", "3"]);
    // Acked: starved again, and the next word is heeded.
    await m.ack(["1", "2", "3"]);
    m.peerDue();
    await settle();
    expect(r.ids).toEqual(["1", "2", "3", "4", "5"]);

    // A due time in the future is looked at then, busy or not.
    m.peerDue(clock.now() + 3_000);
    await clock.advance(2_990);
    const justBefore = polls();
    await clock.advance(20);
    expect(polls()).toBe(justBefore + 1);
  });

  it("polls at least every cap while one is set, and at the table's interval again after", async () => {
    const { m, clock, seed, store } = managerSetup(OPTIONS);
    const r = new RecordingReceiver();
    r.onBatch = (batch) => void m.ack(batch.map((row) => row.id));
    m.subscribe(r);
    await clock.advance(10);
    m.setPollCap(1_000);
    await clock.advance(1_000);
    seed(1);
    await clock.advance(2_010); // the sweep looks within a cap (and a tick) of the last look
    expect(r.ids).toEqual(["1"]);
    m.setPollCap(undefined);
    await clock.advance(1_000); // past the look its claim planned (ack wait and backoff), acked or not
    const polls = store.calls.readDue;
    const looks = store.calls.sweep;
    await clock.advance(20_000);
    expect(store.calls.readDue).toBe(polls); // back to 30 s: no poll, and no look for due rows either
    expect(store.calls.sweep).toBe(looks);
    seed(1, { id: "2" });
    await clock.advance(10_000);
    expect(r.ids).toEqual(["1", "2"]); // the look a poll interval after the last one found it
  });

  it("looks for a dead node's deliveries when their leases run out, before the next poll", async () => {
    const { m, clock, store } = managerSetup(OPTIONS);
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    // Claimed by a node that died just now: due after the ack wait and a first backoff.
    store.seed(T, [{ id: "9", epoch: 1, timeNext: clock.now() + 1_000 + 600 }]);
    m.expectPeerRedeliveries();
    await clock.advance(1_000 + 500 * 1.34 + 20);
    expect(r.ids).toEqual(["9"]);
  });

  it("shared with other nodes, a poll reads what its receivers have credit for, not a whole cache", async () => {
    const { m, clock, seed, store } = managerSetup({ ...OPTIONS, cacheSize: 100 });
    const limits: number[] = [];
    const readDue = store.readDue.bind(store);
    store.readDue = (table, now, limit, maxBytes) => {
      limits.push(limit);
      return readDue(table, now, limit, maxBytes);
    };
    m.setShared(true);
    const r = new RecordingReceiver(12);
    m.subscribe(r);
    seed(50);
    await clock.advance(10);
    expect(limits[0]).toBe(12);
    expect(r.ids).toHaveLength(12);
    m.setShared(false);
    m.wake();
    await settle();
    expect(limits.at(-1)).toBe(100); // alone: the whole cache, as Vitess reads
  });

  it("shared, a round of credit's rows queued here are written held: other nodes pass them by until the hold ends", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock();
    const options = resolveOptions({ ...OPTIONS, ackWaitMs: 30_000, pollIntervalMs: 30_000, cacheSize: 100 });
    await store.createTable(T, options);
    const peers: MessageManager[] = [];
    const node = (credit: number) => {
      const m = new MessageManager(T, options, {
        store,
        clock,
        random: () => 0.5,
        semaphore: new Semaphore(4),
        log: silentLogger,
        signalDue: (at) => peers.filter((p) => p !== m).forEach((p) => p.peerDue(at)),
      });
      peers.push(m);
      m.open();
      m.setShared(true);
      const r = new RecordingReceiver(credit);
      m.subscribe(r);
      return { m, r };
    };
    const a = node(3);
    const b = node(10);
    await clock.advance(10);
    const enqueue = (...ids: string[]) => a.m.enqueue(ids.map((id) => ({ id, payload: "{}" })));
    await enqueue("1", "2", "3"); // credit for them: leased to A's receiver
    await settle(20);
    await enqueue("4", "5", "6"); // no credit left, a round of it: held for A's cache
    await settle(20);
    expect(a.r.ids).toEqual(["1", "2", "3"]);
    expect(store.row(T, "4")).toMatchObject({ epoch: 0, timeNext: clock.now() + HOLD_MS });
    // B polls meanwhile (its receiver is starved) and passes the held rows by.
    b.m.peerDue();
    await clock.advance(500);
    expect(b.r.ids).toEqual([]);
    // A's receiver acks: A claims the held rows from its cache.
    await a.m.ack(["1", "2", "3"]);
    await settle(20);
    expect(a.r.ids).toEqual(["1", "2", "3", "4", "5", "6"]);
    expect(a.m.stats.claimsLost + b.m.stats.claimsLost).toBe(0);
    // More than a round of credit waiting here: not held, due for B at once.
    await enqueue("7", "8", "9", "10");
    await settle(20);
    expect(store.row(T, "7")).toMatchObject({ epoch: 1 }); // B claimed it
    expect(b.r.ids).toEqual(["7", "8", "9", "10"]);
    // A's stale copies of them lose their claims once its receiver has credit again.
    await a.m.ack(["4", "5", "6"]);
    await settle(20);
    expect(a.m.stats.claimsLost).toBe(4);
    // Held rows still waiting here when their hold ends (A's receiver stays full): B is told, and takes them.
    await enqueue("11", "12", "13");
    await settle(20);
    await enqueue("14");
    await settle(20);
    expect(store.row(T, "14")).toMatchObject({ epoch: 0, timeNext: clock.now() + HOLD_MS });
    await clock.advance(HOLD_MS);
    await settle(20);
    expect(b.r.ids).toContain("14");
    expect(a.r.ids).not.toContain("14");
  });

  it("held rows whose node's subscribers leave fall due when their hold ends: this node and the others look then", async () => {
    const signals: Array<number | undefined> = [];
    const { m, clock, store } = managerSetup({ ...OPTIONS, cacheSize: 100 }, 4, new MemoryStore(), { signalDue: (at) => signals.push(at) });
    m.setShared(true);
    const r = new RecordingReceiver(1);
    const sub = m.subscribe(r);
    await clock.advance(10);
    await m.enqueue([{ id: "1", payload: "{}" }]);
    await settle(20);
    await m.enqueue([{ id: "2", payload: "{}" }]);
    await settle(20);
    expect(r.ids).toEqual(["1"]);
    const heldUntil = clock.now() + HOLD_MS;
    expect(store.row(T, "2")).toMatchObject({ epoch: 0, timeNext: heldUntil });
    expect(signals).toEqual([]); // leased and held for this node's receiver: nobody else is told
    sub.unsubscribe();
    expect(signals).toContain(heldUntil);
    // A subscriber who comes meanwhile gets it when the hold ends, not at the next poll (30 s).
    const r2 = new RecordingReceiver();
    m.subscribe(r2);
    await clock.advance(HOLD_MS);
    await settle(20);
    expect(r2.ids).toEqual(["2"]);
  });
});
