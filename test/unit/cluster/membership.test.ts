/**
 * Membership over the in-memory cluster store, with fake time: slots, heartbeats, peers, stale nodes,
 * joining again, outages.
 */
import { afterEach, describe, expect, it } from "vitest";
import { Membership, type MembershipOptions } from "../../../src/cluster/membership.js";
import type { Logger } from "../../../src/logger.js";
import type { NodeRecord } from "../../../src/store/cluster-types.js";
import { FakeClock } from "../../support/fake-clock.js";
import { MemoryClusterStore } from "../../support/memory-cluster-store.js";

const HEARTBEAT = 1_000;
const STALE = 3_000;

interface Line {
  level: "debug" | "info" | "warn" | "error";
  msg: string | undefined;
}

function recordingLogger(lines: Line[]): Logger {
  const at = (level: Line["level"]) => (_obj: object, msg?: string) => void lines.push({ level, msg });
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

const open: Membership[] = [];
afterEach(async () => {
  for (const m of open.splice(0)) await m.close();
});

function cluster() {
  const clock = new FakeClock();
  const store = new MemoryClusterStore();
  const node = (id: string, over: Partial<MembershipOptions> = {}) => {
    const connection = store.connect();
    const lines: Line[] = [];
    const peerChanges: string[][] = [];
    const membership = new Membership({
      store: connection,
      clock,
      log: recordingLogger(lines),
      id,
      url: `http://${id}.test:8080`,
      version: "1.2.3",
      redis: false,
      heartbeatMs: HEARTBEAT,
      staleAfterMs: STALE,
      onPeersChanged: (peers) => peerChanges.push(peers.map((p) => p.id)),
      ...over,
    });
    open.push(membership);
    return { membership, connection, lines, peerChanges };
  };
  return { clock, store, node };
}

const ids = (nodes: NodeRecord[]) => nodes.map((n) => n.id);

describe("Membership", () => {
  it("gives each live node its own slot, lowest free first", async () => {
    const { node } = cluster();
    const slots = [];
    for (const id of ["a", "b", "c", "d"]) slots.push(await node(id).membership.join());
    expect(slots).toEqual([0, 1, 2, 3]);
  });

  it("registers itself with its url, version and start time, and lists itself among the nodes", async () => {
    const { clock, store, node } = cluster();
    const { membership } = node("a");
    const startedAt = clock.now();
    await clock.advance(5);
    await membership.join();
    expect(store.nodes.get("a")).toEqual({
      id: "a",
      slot: 0,
      url: "http://a.test:8080",
      version: "1.2.3",
      startedAt,
      heartbeatAt: startedAt + 5,
      redis: false,
    });
    expect(membership.nodes()).toEqual([store.nodes.get("a")]);
    expect(membership.peers()).toEqual([]);
    expect(membership.hasPeers).toBe(false);
  });

  it("heartbeats every heartbeatMs, writing the changes update() made", async () => {
    const { clock, store, node } = cluster();
    const { membership, connection } = node("a");
    await membership.join();
    await clock.advance(HEARTBEAT * 3);
    expect(connection.calls.get("heartbeat")).toBe(3);
    expect(store.nodes.get("a")!.heartbeatAt).toBe(clock.now());
    membership.update({ url: "http://a2.test:8080" });
    expect(store.nodes.get("a")!.url).toBe("http://a.test:8080");
    await clock.advance(HEARTBEAT);
    expect(store.nodes.get("a")!.url).toBe("http://a2.test:8080");
  });

  it("writes a new redis flag at once, not at the next heartbeat, and keeps its heartbeat cadence", async () => {
    const { clock, store, node } = cluster();
    const { membership, connection } = node("a");
    await membership.join();
    await clock.advance(HEARTBEAT / 2);
    membership.update({ redis: true });
    await clock.advance(1);
    expect(store.nodes.get("a")!.redis).toBe(true);
    expect(membership.self()!.redis).toBe(true);
    const beats = connection.calls.get("heartbeat");
    membership.update({ redis: true }); // no change: no extra heartbeat
    await clock.advance(HEARTBEAT - 2);
    expect(connection.calls.get("heartbeat")).toBe(beats);
    await clock.advance(2);
    expect(connection.calls.get("heartbeat")).toBe(beats! + 1);
  });

  it("takes a peer heard on the bus for one whose bus is up until a later heartbeat row says otherwise", async () => {
    const { clock, node } = cluster();
    const a = node("a");
    const b = node("b");
    await a.membership.join();
    await b.membership.join();
    await clock.advance(HEARTBEAT);
    expect(a.membership.peers().map((p) => [p.id, p.redis])).toEqual([["b", false]]);
    const changes = a.peerChanges.length;
    a.membership.heardFrom("b");
    expect(a.membership.peers().map((p) => [p.id, p.redis])).toEqual([["b", true]]);
    expect(a.peerChanges.length).toBe(changes + 1); // news: told
    a.membership.heardFrom("b");
    a.membership.heardFrom("nobody");
    expect(a.peerChanges.length).toBe(changes + 1); // not news, or not a peer
    // b's next row, written after a heard it, says its bus is not up: the row wins.
    await clock.advance(10);
    await clock.advance(HEARTBEAT * 2); // b's next row, then a's read of it
    expect(a.membership.peers().map((p) => [p.id, p.redis])).toEqual([["b", false]]);
  });

  it("tells of peers joining and leaving, not of their heartbeats", async () => {
    const { clock, node } = cluster();
    const a = node("a");
    await a.membership.join();
    const b = node("b");
    await b.membership.join();
    expect(ids(b.membership.peers())).toEqual(["a"]); // read at join
    expect(b.peerChanges).toEqual([["a"]]);
    await clock.advance(HEARTBEAT);
    expect(a.peerChanges).toEqual([["b"]]);
    expect(a.membership.hasPeers).toBe(true);
    expect(ids(a.membership.nodes())).toEqual(["a", "b"]);
    await clock.advance(HEARTBEAT * 5);
    expect(a.peerChanges).toEqual([["b"]]); // heartbeats alone change nothing
    await b.membership.close();
    await clock.advance(HEARTBEAT);
    expect(a.peerChanges).toEqual([["b"], []]);
    expect(a.membership.hasPeers).toBe(false);
  });

  it("drops a peer whose heartbeat went stale, and a joining node takes its slot", async () => {
    const { clock, store, node } = cluster();
    const a = node("a");
    const b = node("b");
    await a.membership.join();
    await b.membership.join();
    a.connection.down = true; // a crashed: no more heartbeats
    await clock.advance(STALE);
    expect(ids(b.membership.peers())).toEqual(["a"]); // exactly staleAfterMs old: still live
    await clock.advance(HEARTBEAT);
    expect(ids(b.membership.peers())).toEqual([]);
    expect(b.peerChanges).toEqual([["a"], []]);
    expect(store.nodes.has("a")).toBe(true); // listed, but not live
    const c = node("c");
    expect(await c.membership.join()).toBe(0); // a's slot: its stale row was deleted
    expect(store.nodes.has("a")).toBe(false);
    expect(ids(c.membership.nodes())).toEqual(["c", "b"]);
  });

  it("does not take a live node's slot however long it has been registered", async () => {
    const { clock, node } = cluster();
    const a = node("a");
    await a.membership.join();
    await clock.advance(STALE * 10);
    expect(await node("b").membership.join()).toBe(1);
  });

  it("joins again, keeping its slot, when its row vanished", async () => {
    const { clock, store, node } = cluster();
    const slotChanges: number[][] = [];
    const a = node("a", { onSlotChanged: (slot, previous) => slotChanges.push([slot, previous]) });
    await node("z").membership.join();
    expect(await a.membership.join()).toBe(1);
    store.nodes.delete("a");
    await clock.advance(HEARTBEAT);
    expect(store.nodes.get("a")).toMatchObject({ slot: 1, heartbeatAt: clock.now() });
    expect(a.membership.slot).toBe(1);
    expect(slotChanges).toEqual([]);
    expect(a.lines).toContainEqual({ level: "warn", msg: expect.stringMatching(/joined again/) });
  });

  it("joins again with another slot, and says so, when its slot was taken while it was away", async () => {
    const { clock, store, node } = cluster();
    const slotChanges: number[][] = [];
    const a = node("a", { onSlotChanged: (slot, previous) => slotChanges.push([slot, previous]) });
    expect(await a.membership.join()).toBe(0);
    a.connection.down = true; // paused, or cut off, longer than staleAfterMs
    await clock.advance(STALE + HEARTBEAT);
    expect(await node("b").membership.join()).toBe(0);
    a.connection.down = false;
    await clock.advance(HEARTBEAT);
    expect(a.membership.slot).toBe(1);
    expect(slotChanges).toEqual([[1, 0]]);
    expect([...store.nodes.values()].map((n) => [n.id, n.slot])).toEqual([
      ["b", 0],
      ["a", 1],
    ]);
  });

  it("logs a failing heartbeat once per outage, keeps trying, and never throws from its timer", async () => {
    const { clock, store, node } = cluster();
    const a = node("a");
    await a.membership.join();
    await node("b").membership.join();
    await clock.advance(HEARTBEAT);
    a.connection.down = true;
    a.membership.update({ redis: true });
    await clock.advance(HEARTBEAT * 10);
    expect(a.lines.filter((l) => l.level === "warn")).toHaveLength(1);
    expect(a.connection.calls.get("heartbeat")).toBe(12); // one per heartbeat, and one at once for the new redis flag
    expect(ids(a.membership.peers())).toEqual(["b"]); // as last read
    a.connection.down = false;
    await clock.advance(HEARTBEAT);
    expect(a.lines.at(-1)).toEqual({ level: "info", msg: expect.stringMatching(/written again/) });
    expect(store.nodes.get("a")).toMatchObject({ heartbeatAt: clock.now(), redis: true }); // the update was kept
    a.connection.down = true;
    await clock.advance(HEARTBEAT);
    expect(a.lines.filter((l) => l.level === "warn")).toHaveLength(2); // a new outage
  });

  it("waits for a hung heartbeat instead of starting another", async () => {
    const { clock, node } = cluster();
    const a = node("a");
    await a.membership.join();
    const release = a.connection.hold();
    await clock.advance(HEARTBEAT * 5);
    expect(a.connection.calls.get("heartbeat")).toBe(1);
    release();
    await clock.advance(HEARTBEAT);
    expect(a.connection.calls.get("heartbeat")).toBe(2);
  });

  it("logs a callback that throws instead of throwing from its timer", async () => {
    const { clock, node } = cluster();
    const a = node("a", {
      onPeersChanged: () => {
        throw new Error("boom");
      },
    });
    await a.membership.join();
    await node("b").membership.join();
    await clock.advance(HEARTBEAT * 2);
    expect(a.lines).toContainEqual({ level: "error", msg: "a membership callback threw" });
    expect(a.connection.calls.get("heartbeat")).toBe(2);
  });

  it("leaves at close: its row is deleted, its slot free and its timer stopped", async () => {
    const { clock, store, node } = cluster();
    const a = node("a");
    await a.membership.join();
    await a.membership.close();
    expect(store.nodes.size).toBe(0);
    expect(clock.pendingTimers).toBe(0);
    expect(await node("b").membership.join()).toBe(0);
    await expect(a.membership.join()).rejects.toThrow(/closed/);
  });

  it("rejects join when the database is down or every slot is held", async () => {
    const { clock, store, node } = cluster();
    store.down = true;
    await expect(node("a").membership.join()).rejects.toThrow(/ECONNREFUSED/);
    store.down = false;
    for (let slot = 0; slot < 1024; slot++) {
      store.nodes.set(`n${slot}`, { id: `n${slot}`, slot, url: null, version: "1", startedAt: 0, heartbeatAt: clock.now(), redis: false });
    }
    await expect(node("b").membership.join()).rejects.toThrow(/all 1024 node slots/);
    expect(clock.pendingTimers).toBe(0);
  });
});
