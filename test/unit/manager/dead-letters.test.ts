import { afterEach, describe, expect, it } from "vitest";
import { closeManagers, MANAGER_TABLE as T, managerSetup as setup } from "../../support/manager.js";
import { RecordingReceiver } from "../../support/receivers.js";

afterEach(closeManagers);

// With random() = 0.5 the jitter is 1: redelivery comes ackWait + minBackoff << epoch after a send.
const fast = { batchSize: 10, ackWaitMs: 1_000, minBackoffMs: 1_000, pollIntervalMs: 500 };

describe("max attempts and dead letters", () => {
  it("moves a message that is never acked to the dead letters after exactly maxAttempts deliveries", async () => {
    const { m, clock, seed, store } = setup({ ...fast, maxAttempts: 3 });
    seed(2);
    const r = new RecordingReceiver();
    r.onBatch = (batch) => void m.ack(batch.filter((row) => row.id === "2").map((row) => row.id)); // 2 is fine
    m.subscribe(r);
    await clock.advance(10);
    await clock.advance(60_000); // far more than three ack waits plus backoffs
    expect(r.arrivals.filter((a) => a.id === "1").map((a) => a.epoch)).toEqual([0, 1, 2]);
    expect(store.row(T, "1")).toBeUndefined();
    expect(await store.countDead(T)).toBe(1);
    const [dead] = (await store.listDead(T, 10)).messages;
    expect(dead).toMatchObject({ id: "1", epoch: 3, reason: "delivered 3 times without an ack (maxAttempts 3)" });
    expect(m.stats).toMatchObject({ deadLettered: 1, acked: 1 });
    expect(r.ids.filter((id) => id === "2")).toHaveLength(1);
  });

  it("redrive brings a dead letter back with epoch 0, due now, and it is delivered again", async () => {
    const { m, clock, seed, store } = setup({ ...fast, maxAttempts: 1 });
    seed(1);
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    await clock.advance(5_000);
    expect(r.arrivals.map((a) => a.epoch)).toEqual([0]);
    expect(await store.countDead(T)).toBe(1);

    expect(await m.redrive(["1", "7"])).toEqual({ redriven: ["1"], missing: ["7"], conflicts: [] });
    await clock.advance(10);
    expect(r.arrivals.map((a) => a.epoch)).toEqual([0, 0]);
    expect(m.stats.redriven).toBe(1);
  });

  it("maxAttempts 0 redelivers forever, as Vitess does", async () => {
    const { m, clock, seed, store } = setup({ ...fast, maxBackoffMs: 1_000 });
    seed(1);
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    await clock.advance(30_000);
    expect(r.arrivals.length).toBeGreaterThan(10);
    expect(await store.countDead(T)).toBe(0);
  });

  it("leaves the message in the table when the move fails, and retries it later", async () => {
    const { m, clock, seed, store } = setup({ ...fast, maxAttempts: 1 });
    seed(1);
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    store.failNext("deadLetter");
    await clock.advance(2_100); // due again: the move fails
    expect(m.stats.deadLetterFailed).toBe(1);
    expect(store.row(T, "1")).toBeDefined();
    await clock.advance(5_000);
    expect(await store.countDead(T)).toBe(1);
    expect(r.arrivals).toHaveLength(1); // never delivered for a second attempt
  });
});
