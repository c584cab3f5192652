import { Semaphore } from "async-mutex";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../../src/logger.js";
import { ByteBudget } from "../../../src/manager/byte-budget.js";
import { MessageManager } from "../../../src/manager/manager.js";
import { resolveOptions } from "../../../src/options.js";
import { FakeClock, settle } from "../../support/fake-clock.js";
import { closeManagers, enqueueRows, MANAGER_TABLE, managerSetup } from "../../support/manager.js";
import { MemoryStore } from "../../support/memory-store.js";
import { RecordingReceiver } from "../../support/receivers.js";

const T = MANAGER_TABLE;
const setup = managerSetup;

afterEach(closeManagers);

/** A manager (as managerSetup's) whose cache is bounded by a budget of `maxBytes`. */
async function budgetSetup(maxBytes: number) {
  const store = new MemoryStore();
  const budget = new ByteBudget(maxBytes);
  const clock = new FakeClock();
  const options = resolveOptions({ ackWaitMs: 30_000, pollIntervalMs: 30_000, batchSize: 2, cacheSize: 100 });
  await store.createTable(T, options);
  const m = new MessageManager(T, options, { store, clock, random: () => 0.5, semaphore: new Semaphore(4), budget, log: silentLogger });
  m.open();
  return { store, budget, clock, m };
}

describe("MessageManager", () => {
  it("refuses insert-path adds while nobody is subscribed", async () => {
    const { m, row } = setup();
    expect(await enqueueRows(m, [row("1")])).toBe(0);
    expect(m.snapshot().cached).toBe(0);
  });

  it("delivers rows already in the table when the first receiver subscribes", async () => {
    const { m, seed, clock } = setup();
    seed(3);
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    expect(r.ids).toEqual(["1", "2", "3"]);
  });

  it("sends batches of at most batchSize", async () => {
    const { m, seed, clock } = setup({ batchSize: 3 });
    seed(8);
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    expect(r.batches.map((b) => b.length)).toEqual([3, 3, 2]);
  });

  it("alternates between two receivers", async () => {
    const { m, clock, row } = setup({ batchSize: 1 });
    const a = new RecordingReceiver();
    const b = new RecordingReceiver();
    a.holdSends = b.holdSends = true; // both stay busy until released
    m.subscribe(a);
    m.subscribe(b);
    await clock.advance(10);
    await enqueueRows(m, [row("1"), row("2")]);
    await settle();
    expect(a.ids).toEqual(["1"]);
    expect(b.ids).toEqual(["2"]);
    a.holdSends = b.holdSends = false;
    a.release();
    b.release();
    await settle();
    await enqueueRows(m, [row("3"), row("4"), row("5"), row("6")]);
    await settle();
    expect(a.ids).toEqual(["1", "3", "5"]);
    expect(b.ids).toEqual(["2", "4", "6"]);
  });

  it("stops sending to a receiver that went away; the other gets everything", async () => {
    const { m, clock, row } = setup({ batchSize: 1 });
    const a = new RecordingReceiver();
    const b = new RecordingReceiver();
    const subA = m.subscribe(a);
    m.subscribe(b);
    await clock.advance(10);
    subA.unsubscribe();
    await enqueueRows(m, [row("1"), row("2"), row("3")]);
    await settle();
    expect(a.ids).toEqual([]);
    expect(b.ids).toEqual(["1", "2", "3"]);
  });

  it("sends a batch only once it is claimed, and gives its receiver nothing else meanwhile", async () => {
    const { m, clock, seed, store } = setup({ batchSize: 1 });
    const release = store.hold("claim");
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    seed(2); // polled rows are not leased: each send waits for its claim
    m.wake();
    await settle();
    expect(r.ids).toEqual([]); // claim stuck: nothing sent, the receiver busy
    expect(store.calls.claim).toBe(1);
    release();
    await settle();
    expect(r.ids).toEqual(["1", "2"]);
  });

  it("wake({forget}) drops those ids from the cache: rows acked elsewhere are not even claimed", async () => {
    const { m, clock, seed, store } = setup({ batchSize: 1 });
    const release = store.hold("claim");
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    seed(3);
    m.wake();
    await settle();
    expect(m.snapshot().cached).toBe(3); // 1 being claimed, 2 and 3 queued
    await store.ack(T, ["2", "3"], clock.now()); // acked in the application's transaction
    m.wake({ forget: ["2", "3"] });
    await settle();
    expect(m.snapshot().cached).toBe(1);
    release();
    await settle();
    expect(r.ids).toEqual(["1"]);
    expect(store.calls.claim).toBe(1); // without the forget: three, two of them lost
  });

  it("wake({dueAt}) polls again at each due time given", async () => {
    const { m, clock, store } = setup({ pollIntervalMs: 60_000 });
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    const later = clock.now() + 5_000;
    store.seed(T, [{ id: "9", timeNext: later }]); // delayed, written elsewhere
    m.wake({ dueAt: [later] });
    await clock.advance(4_900);
    expect(r.ids).toEqual([]);
    await clock.advance(200);
    expect(r.ids).toEqual(["9"]);
  });

  it("runs one claim at a time with the semaphore at 1, even with several receivers", async () => {
    const { m, clock, seed, store } = setup({ batchSize: 1 }, 1);
    const release = store.hold("claim");
    const receivers = [new RecordingReceiver(), new RecordingReceiver(), new RecordingReceiver()];
    for (const r of receivers) m.subscribe(r);
    await clock.advance(10);
    seed(3); // polled rows are not leased: each send waits for its claim
    m.wake();
    await settle();
    expect(receivers.map((r) => r.ids.length)).toEqual([0, 0, 0]); // three batches popped, none claimed yet...
    expect(store.activeClaims).toBe(1); // ...and only one claim is running
    release();
    await settle();
    expect(receivers.map((r) => r.ids.length)).toEqual([1, 1, 1]);
    expect(store.maxActiveClaims).toBe(1);
    expect(store.calls.claim).toBe(3);
  });

  it("leaves a batch whose send failed claimed: due after the ack wait plus backoff", async () => {
    const { m, clock, seed, store } = setup();
    seed(1);
    const r = new RecordingReceiver();
    r.failSends = true;
    m.subscribe(r);
    await clock.advance(10);
    expect(r.ids).toEqual(["1"]);
    expect(store.row(T, "1")?.epoch).toBe(1);
    expect(store.row(T, "1")?.timeNext).toBe(clock.now() - 10 + 30_000 + 30_000);
    expect(m.stats.sendFailed).toBe(1);
  });

  it("redelivers an unacked message after ack wait plus backoff, with epoch + 1", async () => {
    const { m, clock, seed } = setup({ pollIntervalMs: 1_000 });
    seed(1);
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    expect(r.batches.flat().map((x) => x.epoch)).toEqual([0]);
    await clock.advance(59_000); // due at +60 s: ack wait 30 s + backoff 30 s (jitter 0.999999 → min)
    expect(r.ids).toEqual(["1"]);
    await clock.advance(2_000);
    expect(r.batches.flat().map((x) => x.epoch)).toEqual([0, 1]);
    expect(m.stats.delayed).toBe(1);
  });

  it("never sends a message again once acked", async () => {
    const { m, clock, seed } = setup({ pollIntervalMs: 1_000 });
    seed(1);
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    expect(await m.ack(["1"])).toBe(1);
    expect(await m.ack(["1"])).toBe(0);
    await clock.advance(200_000);
    expect(r.ids).toEqual(["1"]);
    expect(m.stats.acked).toBe(1);
  });

  it("evicts a cached copy on ack so it is not sent", async () => {
    const { m, clock, row } = setup({ batchSize: 1 });
    const r = new RecordingReceiver();
    r.holdSends = true;
    m.subscribe(r);
    await clock.advance(10);
    await enqueueRows(m, [row("1"), row("2"), row("3")]);
    await settle();
    expect(r.ids).toEqual(["1"]);
    await m.ack(["2"]);
    r.holdSends = false;
    r.release();
    await settle();
    expect(r.ids).toEqual(["1", "3"]);
  });

  it("does not re-add rows acked while a poll's read was in flight", async () => {
    const { m, clock, seed, store } = setup();
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10); // first poll: table empty
    seed(2);
    const release = store.hold("readDue");
    m.wake();
    await settle(); // the poll has its snapshot (1 and 2 due) and waits
    await m.ack(["1"]);
    release();
    await settle();
    expect(r.ids).toEqual(["2"]);
  });

  it("does not let a poll re-add a row that was postponed while its read was in flight", async () => {
    const { m, clock, seed, store } = setup({ batchSize: 1 });
    seed(1);
    const r = new RecordingReceiver();
    r.holdSends = true;
    m.subscribe(r);
    await clock.advance(10);
    expect(r.ids).toEqual(["1"]); // being sent, not yet postponed
    const release = store.hold("readDue");
    m.wake();
    await settle(); // the poll's snapshot has row 1 still due
    r.holdSends = false;
    r.release(); // send ends, postpone commits, the discard waits for the poll
    await settle();
    release();
    await settle();
    expect(store.row(T, "1")?.epoch).toBe(1);
    expect(r.ids).toEqual(["1"]);
    expect(m.snapshot().cached).toBe(0);
  });

  it("keeps delivering cached messages while a poll's read is slow", async () => {
    const { m, clock, seed, store } = setup({ batchSize: 1 });
    seed(3);
    const r = new RecordingReceiver();
    r.holdSends = true;
    m.subscribe(r);
    await clock.advance(10);
    expect(r.ids).toEqual(["1"]);
    const release = store.hold("readDue");
    m.wake();
    await settle();
    r.holdSends = false;
    r.release();
    await settle();
    expect(r.ids).toEqual(["1", "2", "3"]);
    release();
  });

  it("in pending mode refills the cache as it drains (cacheSize 2, poll every 30 s)", async () => {
    const { m, clock, seed } = setup({ cacheSize: 2, batchSize: 1, pollIntervalMs: 30_000 });
    seed(4);
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(3_000);
    expect([...r.ids].sort()).toEqual(["1", "2", "3", "4"]);
  });

  it("sends a delayed message enqueued here when it falls due, without waiting for a poll", async () => {
    const { m, clock, row, store } = setup({ pollIntervalMs: 30_000 });
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    const polls = store.calls.readDue;
    expect(await enqueueRows(m, [row("9", clock.now() + 5_000)])).toBe(1);
    await clock.advance(4_900);
    expect(r.ids).toEqual([]);
    await clock.advance(200);
    expect(r.ids).toEqual(["9"]);
    expect(store.calls.readDue).toBe(polls);
  });

  it("delivers a delayed message enqueued with nobody subscribed when it falls due, to a subscriber who came since", async () => {
    const { m, clock, row } = setup({ pollIntervalMs: 30_000 });
    await clock.advance(10);
    expect(await enqueueRows(m, [row("9", clock.now() + 2_000)])).toBe(0); // nobody to send to: not held
    await clock.advance(300);
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(1_600);
    expect(r.ids).toEqual([]);
    await clock.advance(200); // 2,000 ms after the enqueue, 28 s before the periodic poll
    expect(r.ids).toEqual(["9"]);
  });

  it("keeps the due time of a delayed message when its last subscriber leaves before it falls due", async () => {
    const { m, clock, row } = setup({ pollIntervalMs: 30_000 });
    const first = m.subscribe(new RecordingReceiver());
    await clock.advance(10);
    expect(await enqueueRows(m, [row("9", clock.now() + 2_000)])).toBe(1); // a timer
    first.unsubscribe();
    await clock.advance(500);
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(1_400);
    expect(r.ids).toEqual([]);
    await clock.advance(200);
    expect(r.ids).toEqual(["9"]);
  });

  it("polls when a message delayed past the next poll falls due, not at the poll after it", async () => {
    const { m, clock, row } = setup({ pollIntervalMs: 5_000 });
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(500);
    await enqueueRows(m, [row("9", clock.now() + 7_000)]);
    await clock.advance(6_900);
    expect(r.ids).toEqual([]);
    await clock.advance(200); // the periodic polls fall at 5.5 s and 10.5 s
    expect(r.ids).toEqual(["9"]);
  });

  it("holds no more payload bytes than the cache budget, reads more as it drains, and delivers everything", async () => {
    const { store, budget, clock, m } = await budgetSetup(5_000);
    const payload = JSON.stringify("x".repeat(998)); // 1,000 bytes
    store.seed(
      T,
      Array.from({ length: 30 }, (_, i) => ({ id: String(i + 1), timeNext: clock.now() - 1000 + i, payload })),
    );
    let most = 0;
    const r = new RecordingReceiver(4);
    r.onBatch = () => (most = Math.max(most, budget.usedBytes));
    const sub = m.subscribe(r);
    for (let round = 0; round < 40 && r.ids.length < 30; round++) {
      await clock.advance(10);
      most = Math.max(most, budget.usedBytes);
      const unacked = r.ids.filter((id) => store.row(T, id)?.timeAcked === null);
      if (unacked.length > 0) await m.ack(unacked);
    }
    expect(new Set(r.ids).size).toBe(30);
    expect(most).toBeLessThanOrEqual(5_000);
    sub.unsubscribe();
    await m.close();
    expect(budget.usedBytes).toBe(0);
  });

  it("writes leased at insert only what receivers have credit for, so a message never sent counts no attempt", async () => {
    const { m, store, clock } = setup({ batchSize: 10 });
    const r = new RecordingReceiver(1); // maxInFlight 1
    r.holdSends = true;
    m.subscribe(r);
    await clock.advance(10);
    const first = await m.enqueue([{ payload: "1" }]);
    await settle();
    expect(store.row(T, first.ids[0]!)?.epoch).toBe(1); // leased for the receiver's one credit
    const rest = await m.enqueue([{ payload: "2" }, { payload: "3" }]);
    const more = await m.enqueue([{ payload: "4" }]);
    await settle();
    for (const id of [...rest.ids, ...more.ids]) expect(store.row(T, id)?.epoch).toBe(0); // no credit left: due, unleased
    expect(r.ids).toEqual(first.ids);
    expect((await store.describeTable(T, clock.now())).inFlight).toBe(1);
    r.release();
  });

  it("never writes leased at insert on a table with maxAttempts: only a send counts an attempt", async () => {
    const { m, store, clock } = setup({ batchSize: 10, maxAttempts: 1 });
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    const { ids } = await m.enqueue([{ payload: "1" }, { payload: "2" }]);
    await settle();
    expect(r.ids).toEqual(ids);
    for (const id of ids) expect(store.row(T, id)?.epoch).toBe(1); // recorded by the claim before the send
    expect(store.calls.claim).toBeGreaterThan(0);
  });

  it("refuses an enqueue whose payloads do not fit the enqueue budget with 429, until the writes ahead of it commit", async () => {
    const store = new MemoryStore();
    const enqueueBudget = new ByteBudget(2_500);
    const options = resolveOptions({});
    await store.createTable(T, options);
    const m = new MessageManager(T, options, {
      store,
      clock: new FakeClock(),
      random: () => 0.5,
      semaphore: new Semaphore(4),
      enqueueBudget,
      log: silentLogger,
    });
    m.open();
    const payload = JSON.stringify("y".repeat(998)); // 1,000 bytes
    const release = store.hold("insertMessages");
    const first = m.enqueue([{ payload }, { payload }]);
    await settle();
    expect(enqueueBudget.usedBytes).toBe(2_000);
    await expect(m.enqueue([{ payload }])).rejects.toMatchObject({ code: "overloaded" });
    // Alone, an enqueue is taken whatever it weighs.
    release();
    expect((await first).ids).toHaveLength(2);
    expect(enqueueBudget.usedBytes).toBe(0);
    const big = await m.enqueue([{ payload }, { payload }, { payload }]);
    expect(big.ids).toHaveLength(3);
    expect(enqueueBudget.usedBytes).toBe(0);
    for (const id of [...(await first).ids, ...big.ids]) expect(store.row(T, id)?.payload).toBe(payload);
    await m.close();
  });

  it("sizes each poll by the rows it read last: a first look of 100, then what the bound takes, and large rows unmeasured", async () => {
    const { store, clock, m } = await budgetSetup(50_000);
    const reads: Array<[number, number | undefined]> = [];
    const readDue = store.readDue.bind(store);
    store.readDue = (table, now, limit, maxBytes) => {
      reads.push([limit, maxBytes]);
      return readDue(table, now, limit, maxBytes);
    };
    const payload = JSON.stringify("z".repeat(998)); // 1,000 bytes: 100 of them fill 50,000 twice over
    store.seed(
      T,
      Array.from({ length: 300 }, (_, i) => ({ id: String(i + 1), timeNext: clock.now() - 1000 + i, payload })),
    );
    const r = new RecordingReceiver();
    r.onBatch = (batch) => void m.ack(batch.map((row) => row.id));
    m.subscribe(r);
    for (let i = 0; i < 50 && new Set(r.ids).size < 300; i++) await clock.advance(10);
    expect(new Set(r.ids).size).toBe(300);
    expect(reads[0]).toEqual([100, 50_000]); // sizes unknown: a first look, measured by the store
    // Then rows of 1/50 of the bound: read plainly, as many as fit in what the budget has free at that size.
    expect(reads.length).toBeGreaterThan(6);
    for (const [limit, maxBytes] of reads.slice(1)) {
      expect(maxBytes).toBe(Infinity);
      expect(limit).toBeGreaterThanOrEqual(1);
      expect(limit).toBeLessThanOrEqual(50);
    }
    await m.close();
  });

  it("takes one row into an empty cache even when it is larger than the whole budget", async () => {
    const { store, budget, clock, m } = await budgetSetup(100);
    store.seed(
      T,
      [1, 2].map((i) => ({ id: String(i), timeNext: clock.now() - 10, payload: JSON.stringify("y".repeat(500)) })),
    );
    const r = new RecordingReceiver();
    r.holdSends = true; // the first stays in flight, charged, while its send runs
    m.subscribe(r);
    await clock.advance(10);
    expect(r.ids).toEqual(["1"]);
    expect(budget.usedBytes).toBe(502);
    await clock.advance(10);
    expect(r.ids).toEqual(["1"]); // the second does not fit beside it
    r.holdSends = false;
    r.release();
    await clock.advance(10);
    expect(r.ids).toEqual(["1", "2"]);
    await m.close();
  });

  it("stops sending at maxInFlight and resumes when acks free credit", async () => {
    const { m, clock, row } = setup({ batchSize: 10 });
    const r = new RecordingReceiver(3);
    const sub = m.subscribe(r);
    await clock.advance(10);
    await enqueueRows(
      m,
      ["1", "2", "3", "4", "5"].map((id) => row(id)),
    );
    await settle();
    expect(r.ids).toEqual(["1", "2", "3"]);
    expect(sub.held).toBe(3);
    await m.ack(["1", "2"]);
    await settle();
    expect(r.ids).toEqual(["1", "2", "3", "4", "5"]);
    expect(sub.held).toBe(3);
  });

  it("keeps a receiver that stops acking from receiving; its messages go to another after the ack wait", async () => {
    const { m, clock, row } = setup({ batchSize: 10, ackWaitMs: 1_000, minBackoffMs: 1_000, pollIntervalMs: 500 });
    const stuck = new RecordingReceiver(2);
    const sub = m.subscribe(stuck);
    await clock.advance(10);
    await enqueueRows(m, [row("1"), row("2"), row("3")]);
    await settle();
    expect(stuck.ids).toEqual(["1", "2"]);
    const other = new RecordingReceiver(10);
    m.subscribe(other);
    await settle();
    expect(other.ids).toEqual(["3"]);
    await clock.advance(2_600); // ack wait + backoff, then a poll
    expect(stuck.ids).toEqual(["1", "2"]); // no credit: it gets nothing more
    expect(other.ids.slice(1).sort()).toEqual(["1", "2", "3"]); // 3 too: nobody acked it
    expect(sub.held).toBe(2);
    await m.ack(["1"]); // the other receiver acks one: the stuck one's lease on it ends too
    expect(sub.held).toBe(1);
  });

  it("does not hand a redelivery back to the receiver that never acked it while another has not had it", async () => {
    const { m, clock, seed } = setup({ batchSize: 1, ackWaitMs: 1_000, minBackoffMs: 1_000, pollIntervalMs: 500 });
    const stuck = new RecordingReceiver(5);
    m.subscribe(stuck);
    seed(1);
    m.wake();
    await clock.advance(10);
    expect(stuck.ids).toEqual(["1"]);
    const busy = new RecordingReceiver(5);
    busy.holdSends = true;
    m.subscribe(busy);
    seed(1, { id: "2" });
    await clock.advance(600); // a poll sends 2 to `busy`, which stays busy
    expect(busy.ids).toEqual(["2"]);
    await clock.advance(1_600); // 1 is due again; `stuck` is idle but had it: it waits for `busy`
    expect(stuck.ids).toEqual(["1"]);
    busy.holdSends = false;
    busy.release();
    await clock.advance(10);
    expect(busy.ids).toEqual(["2", "1"]);
    expect(stuck.ids).toEqual(["1"]);
  });

  it("does not send again a message a poll delivered before its insert was over", async () => {
    // A committed row is visible before its INSERT's answer arrives: the poll's copy can be delivered,
    // recorded and let go of before the insert path offers its own.
    const { m, store, clock } = setup();
    const answer = store.holdAnswer("insertMessages");
    const enqueued = m.enqueue([{ id: "101", payload: "{}" }]);
    await settle(); // committed; the answer is not here yet
    expect(store.row(T, "101")).toMatchObject({ epoch: 0, timeNext: clock.now() }); // nobody subscribed yet: written due
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10); // the first subscriber's poll finds it
    expect(r.ids).toEqual(["101"]);
    expect(m.snapshot().cached).toBe(0); // recorded and discarded: the cache no longer knows the id
    answer();
    expect(await enqueued).toEqual({ ids: ["101"], duplicates: [] });
    await settle();
    expect(m.snapshot().stats.queued).toBe(0); // the insert path's copy went nowhere
    await clock.advance(10);
    expect(r.ids).toEqual(["101"]);
  });

  it("does not deliver a message acked before its insert was over", async () => {
    const { m, store, clock } = setup();
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    const answer = store.holdAnswer("insertMessages");
    const enqueued = m.enqueue([{ id: "101", payload: "{}" }]);
    await settle(); // committed; the answer is not here yet
    const written = store.row(T, "101")!;
    expect(written.epoch).toBe(1); // a subscriber can take it: written leased
    expect(written.timeNext).toBeGreaterThan(clock.now());
    expect(await m.ack(["101"])).toBe(1); // the producer knew the id before the insert path had the row
    answer();
    await enqueued;
    await settle();
    expect(m.snapshot().stats.queued).toBe(0); // the insert path's copy went nowhere
    await clock.advance(10);
    expect(r.ids).toEqual([]);
  });

  it("does not deliver a message acked while its insert-path offer waited behind a slow poll", async () => {
    const { m, store, clock, row } = setup();
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    const releaseRead = store.hold("readDue");
    m.wake(); // a slow poll holds the cache-management mutex across its read
    await settle();
    const offered = enqueueRows(m, [row("101")]); // committed; its offer waits for the mutex
    await settle();
    expect(await m.ack(["101"])).toBe(1);
    releaseRead();
    await offered;
    await settle();
    expect(r.ids).not.toContain("101");
  });

  it("does not deliver a delayed message acked while its timer's add waited behind a slow poll", async () => {
    const { m, store, clock, row } = setup();
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    expect(await enqueueRows(m, [row("201", clock.now() + 1000)])).toBe(1); // a timer
    const releaseRead = store.hold("readDue");
    m.wake();
    await settle();
    await clock.advance(1000); // the timer fires; its add waits for the mutex
    expect(await m.ack(["201"])).toBe(1);
    releaseRead();
    await settle();
    expect(r.ids).not.toContain("201");
  });

  it("does not give a long-delayed message enqueued during a poll an early timer", async () => {
    const { m, store, clock, row } = setup({ pollIntervalMs: 30_000 });
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    const releaseRead = store.hold("readDue");
    m.wake(); // while it runs, no next poll is scheduled
    await settle();
    const due = clock.now() + 30 * 86_400_000;
    expect(await enqueueRows(m, [row("301", due)])).toBe(0); // left to the poller: no timer
    releaseRead();
    await clock.advance(60_000);
    expect(r.ids).not.toContain("301");
  });

  it("does not poll in a loop while every due row is already in flight", async () => {
    const store = new MemoryStore();
    const read = store.readDue.bind(store);
    store.readDue = async (...a: Parameters<typeof read>) => {
      await new Promise((res) => setImmediate(res)); // like real I/O
      return read(...a);
    };
    const { m, clock } = setup({ batchSize: 2, cacheSize: 2 }, 4, store);
    store.seed(T, [
      { id: "1", timeNext: clock.now() - 10 },
      { id: "2", timeNext: clock.now() - 5 },
    ]);
    const r = new RecordingReceiver();
    r.holdSends = true; // a slow subscriber: its batch stays in flight
    m.subscribe(r);
    await settle(5);
    m.wake();
    const before = store.calls.readDue;
    await settle(200); // no time passes, nothing else happens
    expect(store.calls.readDue - before).toBeLessThan(5);
    r.release();
  });

  it("applies a client postpone made while the delivery's claim was still running, after the claim", async () => {
    const { m, store, clock, seed } = setup();
    seed(1);
    const releaseClaim = store.hold("claim");
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    expect(r.ids).toEqual([]);
    const rescheduled = m.reschedule(["1"], 3_600_000); // "retry in an hour", while the claim waits
    await settle();
    releaseClaim();
    expect(await rescheduled).toBe(1);
    expect(r.ids).toEqual(["1"]);
    expect(store.row(T, "1")!.timeNext).toBe(clock.now() + 3_600_000);
    expect(store.row(T, "1")!.epoch).toBe(1); // the delivery is still counted
  });

  it("reschedules with an explicit delay and delivers again after it", async () => {
    const { m, clock, seed, store } = setup({ pollIntervalMs: 30_000 });
    seed(1);
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    expect(await m.reschedule(["1"], 2_000)).toBe(1);
    expect(store.row(T, "1")?.epoch).toBe(1); // a client postpone does not count a delivery
    await clock.advance(1_900);
    expect(r.ids).toEqual(["1"]);
    await clock.advance(200);
    expect(r.ids).toEqual(["1", "1"]);
  });

  it("purges acked rows older than purgeAfter in chunks of 500", async () => {
    const { m, clock, store } = setup({ purgeAfterMs: 60_000, pollIntervalMs: 30_000 });
    const chunks: number[] = [];
    const purge = store.purge.bind(store);
    store.purge = async (...args: Parameters<typeof purge>) => {
      const n = await purge(...args);
      chunks.push(n);
      return n;
    };
    const old = clock.now() - 120_000;
    store.seed(
      T,
      Array.from({ length: 1_200 }, (_, i) => ({ id: `a${i}`, timeAcked: old, timeNext: null })),
    );
    store.seed(T, [
      { id: "fresh", timeAcked: clock.now(), timeNext: null },
      { id: "open", timeNext: clock.now() + 1e9 },
    ]);
    await clock.advance(30_001);
    // The sweep's first look found the old acks: one purge, in chunks, until a chunk comes back short.
    expect(chunks).toEqual([500, 500, 200]);
    expect(m.stats.purged).toBe(1_200);
    expect([...store.tables.get(T)!.rows.keys()].sort()).toEqual(["fresh", "open"]);
  });

  it("sends nothing when the claim fails, counts it, and polls the row again soon", async () => {
    const { m, clock, seed, store } = setup({ pollIntervalMs: 30_000 });
    seed(1);
    store.failNext("claim");
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    expect(m.stats.claimFailed).toBe(1);
    await clock.advance(300); // polled again long before the next periodic poll
    expect(r.ids).toEqual(["1"]); // sent once: after the claim that worked
    expect(store.row(T, "1")?.epoch).toBe(1);
  });

  it("opens and closes twice safely, and can be reopened", async () => {
    const { m, seed, clock } = setup();
    m.open();
    await Promise.all([m.close(), m.close()]);
    await m.close();
    expect(() => m.subscribe(new RecordingReceiver())).toThrow(/closed/);
    m.open();
    seed(1);
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    expect(r.ids).toEqual(["1"]);
  });

  it("closes without hanging while a send is stuck, and tells receivers", async () => {
    const { m, clock, seed, store } = setup();
    seed(1);
    const r = new RecordingReceiver();
    r.holdSends = true; // never released
    m.subscribe(r);
    await clock.advance(10);
    expect(r.ids).toEqual(["1"]);
    await m.close("engine closed");
    expect(r.closedWith).toBe("engine closed");
    expect(store.row(T, "1")?.epoch).toBe(1); // the abandoned send was still recorded
  });
});

describe("ReceiverSlot.send", () => {
  it("does not leave a rejection unhandled when the receiver goes away inside its own send", async () => {
    const { ReceiverSlot } = await import("../../../src/manager/receivers.js");
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => unhandled.push(err);
    process.on("unhandledRejection", onUnhandled);
    try {
      const slot: InstanceType<typeof ReceiverSlot> = new ReceiverSlot({
        send: () => {
          slot.remove(); // e.g. a WebSocket subscriber that finds its socket closing
          return Promise.reject(new Error("socket closed"));
        },
      });
      await expect(slot.send([], new AbortController().signal)).rejects.toThrow(/abandoned/);
      await settle();
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });
});

describe("MessageManager: a receiver that stops reading", () => {
  it("gives up a send that does not finish within the ack wait, so the batch goes to others", async () => {
    const { m, clock, seed, store } = setup({ batchSize: 1, ackWaitMs: 1_000, minBackoffMs: 500, pollIntervalMs: 200 });
    seed(1);
    const stalled = new RecordingReceiver();
    stalled.holdSends = true; // its writes never complete
    m.subscribe(stalled);
    await clock.advance(10);
    expect(stalled.ids).toEqual(["1"]);
    const good = new RecordingReceiver();
    m.subscribe(good);
    await clock.advance(3_000); // send given up at 1 s, recorded; due again after ack wait + backoff
    expect(good.ids).toEqual(["1"]);
    expect(m.stats.sendFailed).toBe(1);
    expect(store.row(T, "1")!.epoch).toBe(2);
    stalled.release();
  });
});
