/**
 * The manager's side of the operations API (issue 27), on fake time: a paused table sends nothing and
 * reads nothing while its receivers stay subscribed, and a resumed one delivers at once; an operator's
 * delete and purge drop every copy the manager holds and give the receivers their credit back.
 */
import { afterEach, describe, expect, it } from "vitest";
import { resolveOptions } from "../../../src/options.js";
import { settle } from "../../support/fake-clock.js";
import { closeManagers, enqueueRows, MANAGER_TABLE, managerSetup } from "../../support/manager.js";
import { RecordingReceiver } from "../../support/receivers.js";

afterEach(closeManagers);

const paused = (m: { options: ReturnType<typeof resolveOptions> }, on: boolean) => resolveOptions({ ...m.options, paused: on });

describe("a paused table", () => {
  it("sends nothing and does not poll, enqueued or due rows alike; resumed, it delivers them at once", async () => {
    const { m, seed, clock, row, store } = managerSetup({ pollIntervalMs: 1_000 });
    const r = new RecordingReceiver();
    m.subscribe(r);
    m.configure(paused(m, true));
    seed(2);
    const polls = store.calls.readDue;
    expect(await enqueueRows(m, [row("10"), row("11", clock.now() + 500)])).toBe(0); // not taken into the cache
    await clock.advance(5_000); // five poll intervals, and the delayed row fell due
    expect(r.ids).toEqual([]);
    expect(store.calls.readDue).toBe(polls);
    expect(m.paused).toBe(true);
    expect(m.snapshot().receivers).toBe(1);

    m.configure(paused(m, false));
    await clock.advance(10);
    expect(r.ids.sort()).toEqual(["1", "10", "11", "2"]);
  });

  it("drops what it had queued when paused (the rows stay due in the table) and keeps in-flight holds", async () => {
    const { m, seed, clock } = managerSetup({ batchSize: 1 });
    seed(3);
    const r = new RecordingReceiver(1); // credit for one: the other two wait in the cache
    m.subscribe(r);
    await clock.advance(10);
    expect(r.ids).toEqual(["1"]);
    expect(m.snapshot().cached).toBe(2); // waiting for credit (the one sent left the cache once recorded)
    m.configure(paused(m, true));
    expect(m.snapshot().cached).toBe(0);
    await m.ack(["1"]);
    await clock.advance(100);
    expect(r.ids).toEqual(["1"]);
    m.configure(paused(m, false));
    await clock.advance(10);
    expect(r.ids).toEqual(["1", "2"]);
  });
});

describe("an operator's delete and purge", () => {
  it("delete drops the cached copy, so it is never sent, and counts it", async () => {
    const { m, seed, clock } = managerSetup();
    seed(2);
    const r = new RecordingReceiver();
    r.holdSends = true;
    m.subscribe(r);
    await clock.advance(10);
    expect(await m.deleteUnacked(["2", "404"])).toBe(1);
    r.holdSends = false;
    r.release();
    await clock.advance(60_000); // past the ack wait: "1" comes again, "2" never
    expect(r.ids.filter((id) => id === "2").length).toBeLessThanOrEqual(1); // at most the batch already sent
    expect(m.snapshot().stats.deleted).toBe(1);
  });

  it("delete of a held message gives the receiver its credit back", async () => {
    const { m, seed, clock } = managerSetup({ batchSize: 1 });
    seed(2);
    const r = new RecordingReceiver(1);
    m.subscribe(r);
    await clock.advance(10);
    expect(r.ids).toEqual(["1"]);
    await m.deleteUnacked(["1"]);
    await clock.advance(10);
    expect(r.ids).toEqual(["1", "2"]);
  });

  it("purge deletes every unacked row in chunks, empties the cache and frees every receiver's credit", async () => {
    const { m, seed, clock, store } = managerSetup({ batchSize: 1, cacheSize: 5 });
    seed(7);
    const r = new RecordingReceiver(2);
    m.subscribe(r);
    await clock.advance(10);
    expect(r.ids).toEqual(["1", "2"]);
    expect(await m.deleteUnacked()).toBe(7);
    expect(m.snapshot().cached).toBe(0);
    expect((await store.describeTable(MANAGER_TABLE, clock.now())).ready).toBe(0);
    await enqueueRows(m, [{ id: "20", priority: 50, timeNext: clock.now(), epoch: 0, payload: "{}" }]);
    await settle();
    await clock.advance(10);
    expect(r.ids).toEqual(["1", "2", "20"]); // credit back: the next message goes out at once
  });
});
