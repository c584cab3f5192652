/**
 * Issue 30: a message is delivered when it is due (delays, redeliveries after the ack wait and backoff,
 * postpones, extended leases, rows left from before a restart), not at the next periodic poll. With a fake
 * clock: exactly at due (due times are kept in 10 ms slots; these are whole slots).
 */
import { Semaphore } from "async-mutex";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../../src/logger.js";
import { MessageManager } from "../../../src/manager/manager.js";
import { resolveOptions } from "../../../src/options.js";
import type { MessageRow } from "../../../src/model/messages.js";
import { FakeClock } from "../../support/fake-clock.js";
import { closeManagers, MANAGER_TABLE, managerSetup } from "../../support/manager.js";
import { MemoryStore } from "../../support/memory-store.js";
import { RecordingReceiver } from "../../support/receivers.js";

const T = MANAGER_TABLE;
/** A 30 s poll interval: every time below is well before the periodic poll would come. */
const OPTIONS = { ackWaitMs: 1_000, minBackoffMs: 500, pollIntervalMs: 30_000, batchSize: 10 };

afterEach(closeManagers);

/** A receiver that records the fake time each message arrived at and the epoch it had; `ack` acks them. */
function timedReceiver(clock: FakeClock, ack?: MessageManager) {
  const r = new RecordingReceiver();
  const at: Array<{ id: string; epoch: number; at: number }> = [];
  r.onBatch = (batch: MessageRow[]) => {
    at.push(...batch.map((m) => ({ id: m.id, epoch: m.epoch, at: clock.now() })));
    if (ack) void ack.ack(batch.map((m) => m.id));
  };
  return { r, at };
}

describe("due times", () => {
  it("delivers delayed messages exactly when due, however far past the next poll, subscribed at enqueue or not", async () => {
    const { m, clock } = managerSetup(OPTIONS);
    const t0 = clock.now();
    const { ids } = await m.enqueue([
      { payload: "1", delayMs: 2_000 },
      { payload: "2", delayMs: 40_000 },
      { payload: "3", deliverAt: t0 + 300_000 },
    ]);
    await clock.advance(500);
    const { r, at } = timedReceiver(clock, m);
    m.subscribe(r); // after the enqueue
    const { ids: later } = await m.enqueue([{ payload: "4", delayMs: 61_000 }]); // and one while subscribed
    await clock.advance(310_000);
    expect(at.map((a) => [a.id, a.at - t0])).toEqual([
      [ids[0], 2_000],
      [ids[1], 40_000],
      [later[0], 61_500],
      [ids[2], 300_000],
    ]);
  });

  it("polls again soon when the poll a due time asked for failed, backing off while the database fails", async () => {
    const { m, clock, store } = managerSetup(OPTIONS);
    const t0 = clock.now();
    const { r, at } = timedReceiver(clock, m);
    m.subscribe(r);
    await clock.advance(10);
    const { ids } = await m.enqueue([{ payload: "1", delayMs: 40_000 }]); // past the next poll: no timer, a due time
    await clock.advance(39_000);
    store.failNext("readDue", 3); // the due poll and the next two retries fail
    await clock.advance(5_000);
    // Retries 250, 500 and 1,000 ms after each failure: the fourth poll, 1,750 ms after the due time, delivers it.
    expect(at.map((a) => [a.id, a.at - t0])).toEqual([[ids[0], 40_010 + 1_750]]);
    expect(m.snapshot().stats.pollFailed).toBe(3);
  });

  it("redelivers an unacked message after the ack wait plus backoff, not at the next poll", async () => {
    const { m, clock, seed } = managerSetup({ ...OPTIONS, batchSize: 1 });
    seed(1);
    const { r, at } = timedReceiver(clock);
    m.subscribe(r);
    await clock.advance(10);
    const sent = at[0]!.at;
    await clock.advance(5_000);
    // random() is 0.5: jitter 0.999999, so backoff(0) = 500 ms (its minimum) and backoff(1) = 999.999 ms.
    expect(at.map((a) => [a.epoch, a.at - sent])).toEqual([
      [0, 0],
      [1, 1_500],
      [2, 1_500 + 2_000], // rounded up to the 10 ms slot
    ]);
  });

  it("redelivers a message postponed without a delay after its backoff, and with one after the delay", async () => {
    const { m, clock, seed } = managerSetup(OPTIONS);
    seed(2);
    const { r, at } = timedReceiver(clock);
    m.subscribe(r);
    await clock.advance(10);
    const sent = clock.now();
    expect(await m.reschedule(["1"])).toBe(1); // epoch 1 now: backoff(1) = 999.999 ms
    expect(await m.reschedule(["2"], 3_000)).toBe(1);
    await clock.advance(4_000);
    // The first delivery after each postpone (the receiver does not ack, so later ones follow).
    const next = (id: string) => at.find((a) => a.id === id && a.at > sent)!.at - sent;
    expect([next("1"), next("2")]).toEqual([1_000, 3_000]);
  });

  it("redelivers a message whose lease was extended when the extension ends", async () => {
    const { m, clock, seed } = managerSetup(OPTIONS);
    seed(1);
    const { r, at } = timedReceiver(clock);
    m.subscribe(r);
    await clock.advance(10);
    const extendedAt = clock.now() + 200;
    await clock.advance(200);
    expect((await m.extend([{ id: "1", epoch: 0 }], 7_000)).changed).toBe(1);
    await clock.advance(10_000);
    // Delivered at once, then when the extension ended (and again an ack wait plus backoff later).
    expect(at.slice(0, 2).map((a) => a.at - extendedAt)).toEqual([-210, 7_000]);
  });

  it("after a restart, delivers the rows leased before it when their leases end", async () => {
    const store = new MemoryStore();
    const clock = new FakeClock();
    const options = resolveOptions(OPTIONS);
    await store.createTable(T, options);
    const t0 = clock.now();
    store.seed(T, [
      { id: "1", epoch: 1, timeNext: t0 + 4_000 },
      { id: "2", epoch: 2, timeNext: t0 + 9_000 },
    ]);
    const m = new MessageManager(T, options, { store, clock, random: () => 0.5, semaphore: new Semaphore(4), log: silentLogger });
    m.open();
    const { r, at } = timedReceiver(clock);
    m.subscribe(r);
    await clock.advance(10_000);
    const first = (id: string) => at.find((a) => a.id === id)!.at - t0;
    expect([first("1"), first("2")]).toEqual([4_000, 9_000]);
    await m.close();
  });

  it("purges acked rows when they pass purgeAfterMs, not at the next poll", async () => {
    const { m, clock, seed, store } = managerSetup({ ...OPTIONS, purgeAfterMs: 2_000 });
    seed(3);
    await clock.advance(100);
    const t0 = clock.now();
    expect(await m.ack(["1", "2"])).toBe(2);
    await clock.advance(1_000);
    expect(await m.ack(["3"])).toBe(1);
    await clock.advance(999);
    expect(store.row(T, "1")).toBeDefined(); // 1,999 ms after its ack
    await clock.advance(2);
    expect([store.row(T, "1"), store.row(T, "2")]).toEqual([undefined, undefined]);
    expect(store.row(T, "3")).toBeDefined();
    await clock.advance(1_000); // the purge learnt when row 3 was acked from the table
    expect(store.row(T, "3")).toBeUndefined();
    expect(clock.now() - t0).toBeLessThan(30_000);
    expect(m.stats.purged).toBe(3);
  });
});
