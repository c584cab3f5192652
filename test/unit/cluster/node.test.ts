/**
 * ClusterNode over the in-memory cluster store, with fake time and no bus: what the engine is told as
 * peers come and go (poll cap, takeover of a dead node's deliveries, the id slot), and the warning for
 * several nodes without Redis. (With a bus: test/e2e/nodes.test.ts and test/faults/nodes.test.ts.)
 */
import { afterEach, describe, expect, it } from "vitest";
import type { BusEvent } from "../../../src/cluster/bus-events.js";
import { ClusterNode, type PeerAware } from "../../../src/cluster/node.js";
import type { Logger } from "../../../src/logger.js";
import { FakeClock } from "../../support/fake-clock.js";
import { MemoryClusterStore } from "../../support/memory-cluster-store.js";

class RecordingEngine implements PeerAware {
  readonly caps: Array<number | undefined> = [];
  readonly events: BusEvent[] = [];
  lost = 0;
  resyncs = 0;
  idNode: number | undefined;
  applyPeerEvents(events: readonly BusEvent[]): void {
    this.events.push(...events);
  }
  resync(): void {
    this.resyncs++;
  }
  setPollCap(ms: number | undefined): void {
    this.caps.push(ms);
  }
  shared = false;
  setShared(shared: boolean): void {
    this.shared = shared;
  }
  peerLost(): void {
    this.lost++;
  }
  setIdNode(node: number): void {
    this.idNode = node;
  }
}

const nodes: ClusterNode[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.close();
});

function setup() {
  const clock = new FakeClock();
  const store = new MemoryClusterStore();
  const node = () => {
    const warnings: string[] = [];
    const log: Logger = {
      debug: () => {},
      info: () => {},
      warn: (_o: object, msg?: string) => void warnings.push(msg ?? ""),
      error: () => {},
    };
    const conn = store.connect();
    const n = new ClusterNode({ store: conn, clock, log, version: "0", database: "db", peerPollMs: 1_000, heartbeatMs: 1_000 });
    nodes.push(n);
    return { n, conn, warnings, engine: new RecordingEngine() };
  };
  return { clock, node };
}

describe("ClusterNode without a bus", () => {
  it("polls at the tables' own pace alone, every peer poll with a peer, and warns once that Redis is not set", async () => {
    const { clock, node } = setup();
    const a = node();
    const slotA = await a.n.start();
    a.n.attach(a.engine);
    expect(a.engine.idNode).toBe(slotA);
    expect(a.engine.resyncs).toBe(1);
    expect(a.n.view()).toMatchObject({ nodes: 1, bus: { state: "off" }, wakeups: "alone" });
    expect(a.engine.caps.at(-1)).toBeUndefined();

    const b = node();
    const slotB = await b.n.start();
    b.n.attach(b.engine);
    expect(slotB).not.toBe(slotA);
    expect(b.n.view().wakeups).toBe("poll"); // B saw A when it joined
    expect(b.engine.caps.at(-1)).toBe(1_000);
    expect(b.engine.shared).toBe(true);
    expect(a.engine.shared).toBe(false); // until its next heartbeat
    await clock.advance(1_100); // A's next heartbeat reads B
    expect(a.n.view()).toMatchObject({ nodes: 2, wakeups: "poll" });
    expect(a.engine.caps.at(-1)).toBe(1_000);
    expect(a.warnings.filter((w) => w.includes("TABLEMQ_REDIS_URL is not set"))).toHaveLength(1);
    await clock.advance(5_000);
    expect(a.warnings.filter((w) => w.includes("TABLEMQ_REDIS_URL is not set"))).toHaveLength(1);
  });

  it("takes over a peer that stops heartbeating: its deliveries are looked for, and polling goes back to normal", async () => {
    const { clock, node } = setup();
    const a = node();
    await a.n.start();
    a.n.attach(a.engine);
    const b = node();
    await b.n.start();
    await clock.advance(1_100);
    expect(a.n.view().nodes).toBe(2);
    expect(a.engine.shared).toBe(true);
    expect(a.engine.lost).toBe(0);
    // B is cut off (as good as dead to the others): its row goes stale after 3 heartbeats.
    b.conn.down = true;
    await clock.advance(4_100);
    expect(a.n.view()).toMatchObject({ nodes: 1, wakeups: "alone" });
    expect(a.engine.lost).toBe(1);
    expect(a.engine.caps.at(-1)).toBeUndefined();
    expect(a.engine.shared).toBe(false);
  });

  it("starts while the database is down, and joins (and gives the engine its slot) once it answers", async () => {
    const { clock, node } = setup();
    const a = node();
    a.conn.down = true;
    expect(await a.n.start()).toBeUndefined();
    a.n.attach(a.engine);
    expect(a.engine.idNode).toBeUndefined();
    await clock.advance(3_000);
    expect(a.engine.idNode).toBeUndefined();
    a.conn.down = false;
    await clock.advance(1_100);
    expect(a.engine.idNode).toBeDefined();
    expect(a.n.view()).toMatchObject({ nodes: 1, slot: a.engine.idNode });
  });
});
