import { afterEach, describe, expect, it } from "vitest";
import { settle } from "../../support/fake-clock.js";
import { closeManagers, MANAGER_TABLE as T, managerSetup as setup } from "../../support/manager.js";
import { RecordingReceiver } from "../../support/receivers.js";

afterEach(closeManagers);

// With random() = 0.5 the jitter is 1: a delivery is due again ackWait + minBackoff << epoch after its send.
const fast = { batchSize: 2, ackWaitMs: 1_000, minBackoffMs: 1_000, pollIntervalMs: 500 };

describe("fenced acks, postpones and lease extension", () => {
  it("acks with the current delivery's receipt; an older one is stale and changes nothing", async () => {
    const { m, clock, seed, store } = setup(fast);
    seed(1);
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    await clock.advance(2_500); // not acked: redelivered after ack wait + backoff
    expect(r.arrivals.map((a) => a.epoch)).toEqual([0, 1]);

    const stale = await m.ackDeliveries([{ id: "1", epoch: 0 }]);
    expect(stale).toEqual({ changed: 0, stale: [{ id: "1", epoch: 0 }] });
    expect(store.row(T, "1")?.timeAcked).toBeNull();

    expect(await m.ackDeliveries([{ id: "1", epoch: 1 }])).toEqual({ changed: 1, stale: [] });
    expect(store.row(T, "1")?.timeAcked).not.toBeNull();
    // Acked: a receipt for it is neither counted nor stale (acking an acked message is not an error).
    expect(await m.ackDeliveries([{ id: "1", epoch: 0 }])).toEqual({ changed: 0, stale: [] });
  });

  it("refuses at once a receipt whose message is being delivered again, and waits for a current one's record", async () => {
    const { m, clock, seed, store } = setup(fast);
    seed(1);
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    const releaseClaim = store.hold("claim"); // the redelivery's claim hangs
    await clock.advance(2_500);
    expect(r.arrivals.map((a) => a.epoch)).toEqual([0]);

    expect(await m.ackDeliveries([{ id: "1", epoch: 0 }])).toEqual({ changed: 0, stale: [{ id: "1", epoch: 0 }] });
    expect(store.calls.updateDeliveries).toBe(0); // decided without the database

    let result: unknown;
    void m.ackDeliveries([{ id: "1", epoch: 1 }]).then((x) => (result = x));
    await settle();
    expect(result).toBeUndefined(); // the delivery it names is not recorded yet (epoch still 1 in the row)
    releaseClaim();
    await settle();
    expect(result).toEqual({ changed: 1, stale: [] });
    expect(r.arrivals.map((a) => a.epoch)).toEqual([0, 1]); // claimed, then sent
  });

  it("a postpone with a receipt is fenced too", async () => {
    const { m, clock, seed, store } = setup(fast);
    seed(1);
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    await clock.advance(2_500);
    const before = store.row(T, "1")?.timeNext;
    expect(await m.rescheduleDeliveries([{ id: "1", epoch: 0 }], 60_000)).toEqual({ changed: 0, stale: [{ id: "1", epoch: 0 }] });
    expect(store.row(T, "1")?.timeNext).toBe(before);
    expect(await m.rescheduleDeliveries([{ id: "1", epoch: 1 }], 60_000)).toEqual({ changed: 1, stale: [] });
    expect(store.row(T, "1")?.timeNext).toBe(clock.now() + 60_000);
  });

  it("extend keeps a slow consumer's message from redelivery; its batch-mate without extension is redelivered", async () => {
    const { m, clock, seed, store } = setup(fast);
    seed(2);
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    expect(r.ids).toEqual(["1", "2"]);
    expect(await m.extend([{ id: "1", epoch: 0 }], 10_000)).toEqual({ changed: 1, stale: [] });
    expect(store.row(T, "1")?.timeNext).toBe(clock.now() + 10_000);

    await clock.advance(5_000);
    expect(r.arrivals.filter((a) => a.epoch === 1).map((a) => a.id)).toEqual(["2"]);
    await clock.advance(7_000);
    expect(r.arrivals.filter((a) => a.epoch === 1).map((a) => a.id)).toEqual(["2", "1"]);
  });

  it("extend never brings a lease closer, and refuses a stale receipt", async () => {
    const { m, clock, seed, store } = setup(fast);
    seed(1);
    const r = new RecordingReceiver();
    m.subscribe(r);
    await clock.advance(10);
    const leased = store.row(T, "1")!.timeNext!;
    // Current, but already due later than now + 1 ms: nothing moves; it is reported unchanged, not extended.
    expect(await m.extend([{ id: "1", epoch: 0 }], 1)).toEqual({ changed: 0, stale: [], unchanged: [{ id: "1", epoch: 0 }] });
    expect(store.row(T, "1")?.timeNext).toBe(leased);
    await clock.advance(2_500); // redelivered: the first receipt is no longer current
    expect(await m.extend([{ id: "1", epoch: 0 }], 60_000)).toEqual({ changed: 0, stale: [{ id: "1", epoch: 0 }] });
  });

  it("a reschedule sent while the batch is still being sent is applied after the delivery's record, not overwritten by it", async () => {
    const { m, clock, seed, store } = setup(fast);
    seed(1);
    const r = new RecordingReceiver();
    r.holdSends = true;
    m.subscribe(r);
    await clock.advance(10);
    expect(r.ids).toEqual(["1"]);
    const done = m.reschedule(["1"], 60_000); // the client answered before the send's write callback
    await settle();
    r.release();
    await done;
    expect(store.row(T, "1")?.timeNext).toBe(clock.now() + 60_000);
    expect(store.row(T, "1")?.epoch).toBe(1);
  });
});
