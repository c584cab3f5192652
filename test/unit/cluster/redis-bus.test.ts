import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { type BusEvent, encodeEnvelope } from "../../../src/cluster/bus-events.js";
import {
  type BusRole,
  type BusStatus,
  ioredisOptions,
  reconnectDelayMs,
  RedisBus,
  type RedisBusOptions,
  type RedisLike,
  type ResyncReason,
} from "../../../src/cluster/redis-bus.js";
import { silentLogger } from "../../../src/logger.js";
import { FakeClock, settle } from "../../support/fake-clock.js";

const CHANNEL = "tablemq:test:events";

/** A connection the test drives: it comes up, drops and answers PINGs when told. */
class FakeRedis extends EventEmitter implements RedisLike {
  status = "wait";
  readonly published: Array<{ channel: string; message: string }> = [];
  readonly subscribed: string[] = [];
  readonly disconnects: boolean[] = [];
  quits = 0;
  pings = 0;
  /** What connect() does: come up, or fail the way ioredis reports a refused connection. */
  reachable = true;
  ping_: "answer" | "hang" | "fail" = "answer";
  publish_: "answer" | "fail" = "answer";

  constructor(readonly role: BusRole) {
    super();
  }

  async connect(): Promise<void> {
    this.status = "connecting";
    await Promise.resolve();
    if (this.reachable) return this.up();
    this.drop(new Error("connect ECONNREFUSED 127.0.0.1:6379"));
    throw new Error("Connection is closed.");
  }

  up(): void {
    this.status = "ready";
    this.emit("ready");
  }

  drop(err?: Error): void {
    this.status = "reconnecting";
    if (err) this.emit("error", err);
    this.emit("close");
  }

  publish(channel: string, message: string): Promise<unknown> {
    if (this.status !== "ready") return Promise.reject(new Error("Stream isn't writeable and enableOfflineQueue options is false"));
    if (this.publish_ === "fail") return Promise.reject(new Error("OOM"));
    this.published.push({ channel, message });
    return Promise.resolve(1);
  }

  subscribe(channel: string): Promise<unknown> {
    this.subscribed.push(channel);
    return Promise.resolve(1);
  }

  ping(): Promise<unknown> {
    this.pings++;
    if (this.ping_ === "hang") return new Promise(() => {});
    if (this.ping_ === "fail") return Promise.reject(new Error("Connection is closed."));
    return Promise.resolve("PONG");
  }

  quit(): Promise<unknown> {
    this.quits++;
    this.status = "end";
    return Promise.resolve("OK");
  }

  disconnect(reconnect?: boolean): void {
    this.disconnects.push(reconnect ?? false);
  }

  /** What the bus published, as event lists. */
  sent(): BusEvent[][] {
    return this.published.map((p) => (JSON.parse(p.message) as { events: BusEvent[] }).events);
  }
}

function setup(options: Partial<RedisBusOptions> & { reachable?: boolean } = {}) {
  const clock = new FakeClock();
  const conns = new Map<BusRole, FakeRedis>();
  const received: Array<{ events: BusEvent[]; from: string }> = [];
  const resyncs: ResyncReason[] = [];
  const statuses: BusStatus[] = [];
  const bus = new RedisBus({
    url: "redis://fake",
    serverId: "A",
    channel: CHANNEL,
    clock,
    log: silentLogger,
    onEvents: (events, from) => received.push({ events, from }),
    onResync: (why) => resyncs.push(why),
    onStatus: (status) => statuses.push(status),
    connect: (_url, role) => {
      const conn = new FakeRedis(role);
      conn.reachable = options.reachable ?? true;
      conns.set(role, conn);
      return conn;
    },
    ...options,
  });
  return {
    clock,
    bus,
    received,
    resyncs,
    states: () => statuses.map((s) => s.state),
    pub: () => conns.get("publisher")!,
    sub: () => conns.get("subscriber")!,
    /** A message arriving on the subscriber connection. */
    deliver: (from: string, events: BusEvent[], channel = CHANNEL) =>
      conns.get("subscriber")!.emit("message", channel, encodeEnvelope(from, events)),
  };
}

async function openUp(options: Partial<RedisBusOptions> = {}) {
  const h = setup(options);
  const opened = h.bus.open();
  await settle();
  await opened;
  expect(h.bus.status().state).toBe("up");
  return h;
}

const due = (table: string, at?: number): BusEvent => (at === undefined ? { kind: "due", table } : { kind: "due", table, at });

describe("RedisBus: connecting", () => {
  it("opens: both connections ready, the channel subscribed, a PING answered", async () => {
    const h = await openUp();
    expect(h.sub().subscribed).toEqual([CHANNEL]);
    expect(h.pub().pings).toBe(1);
    expect(h.sub().pings).toBe(1);
    expect(h.states()).toEqual(["up"]);
    expect(h.resyncs).toEqual([]);
    await h.bus.close();
  });

  it("resolves open() after the first-connect wait when Redis is down, then comes up and resyncs", async () => {
    const h = setup({ reachable: false, openWaitMs: 2_000 });
    let opened = false;
    void h.bus.open().then(() => (opened = true));
    await h.clock.advance(1_999);
    expect(opened).toBe(false);
    await h.clock.advance(1);
    expect(opened).toBe(true);
    expect(h.bus.status()).toEqual({ state: "down", since: expect.any(Number), lastError: expect.stringContaining("ECONNREFUSED") });

    h.pub().up();
    h.sub().up();
    await settle();
    expect(h.bus.status().state).toBe("up");
    expect(h.bus.status().lastError).toBeUndefined();
    // Events sent while this node was not subscribed are lost: the wiring looks at every table.
    expect(h.resyncs).toEqual(["reconnected"]);
    expect(h.states()).toEqual(["down", "up"]);
    await h.bus.close();
  });

  it("stays down, without throwing, when it cannot even make a connection", async () => {
    const h = setup({
      connect: () => {
        throw new Error("bad url");
      },
    });
    await h.bus.open();
    expect(h.bus.status()).toMatchObject({ state: "down", lastError: expect.stringContaining("bad url") });
    h.bus.publish(due("a"));
    expect(h.bus.stats.dropped).toBe(1);
    await h.bus.close();
    expect(h.bus.status().state).toBe("closed");
  });
});

describe("RedisBus: receiving", () => {
  it("hands peers' events to onEvents on a later turn, never its own echoes", async () => {
    const h = await openUp();
    h.deliver("A", [due("mine")]);
    h.deliver("B", [due("orders", 5)]);
    expect(h.received).toEqual([]); // not inline in the socket's handler
    await settle();
    expect(h.received).toEqual([{ events: [due("orders", 5)], from: "B" }]);
    expect(h.bus.stats).toMatchObject({ received: 1, ignoredOwn: 1, malformed: 0 });
    await h.bus.close();
  });

  it("ignores messages of other channels", async () => {
    const h = await openUp();
    h.deliver("B", [due("x")], "tablemq:other:events");
    await settle();
    expect(h.received).toEqual([]);
    expect(h.bus.stats.received).toBe(0);
    await h.bus.close();
  });

  it("counts and drops malformed messages without throwing", async () => {
    const h = await openUp();
    const emit = (text: string) => h.sub().emit("message", CHANNEL, text);
    expect(() => {
      emit("{not json");
      emit(JSON.stringify({ v: 9, from: "B", events: [] }));
      emit(JSON.stringify({ v: 1, from: "B", events: [{ kind: "due" }] }));
      emit("");
    }).not.toThrow();
    await settle();
    expect(h.received).toEqual([]);
    expect(h.bus.stats).toMatchObject({ malformed: 4, received: 0 });
    await h.bus.close();
  });

  it("survives an onEvents that throws", async () => {
    let calls = 0;
    const h = await openUp({
      onEvents: () => {
        calls++;
        throw new Error("consumer bug");
      },
    });
    h.deliver("B", [due("a")]);
    h.deliver("B", [due("b")]);
    await settle();
    expect(calls).toBe(2);
    await h.bus.close();
  });

  it("drops the queue on overflow, calls onResync('overflow') once and keeps nothing until then", async () => {
    const h = await openUp({ maxQueued: 5 });
    h.deliver("B", [due("a"), due("b")]);
    h.deliver("B", [due("c"), due("d")]);
    // 6 > 5: the queue is dropped; the rest of this burst is covered by the coming resync.
    for (let i = 0; i < 1_000; i++) h.deliver("B", [due(`t${i}`), due(`u${i}`)]);
    expect(h.bus.stats.overflows).toBe(1);
    await settle();
    expect(h.resyncs).toEqual(["overflow"]);
    expect(h.received).toEqual([]);
    expect(h.bus.stats.received).toBe(1_002);

    // After the resync, events flow again.
    h.deliver("B", [due("later")]);
    await settle();
    expect(h.received).toEqual([{ events: [due("later")], from: "B" }]);
    expect(h.resyncs).toEqual(["overflow"]);
    await h.bus.close();
  });
});

describe("RedisBus: publishing", () => {
  it("sends the first event at once and merges the rest of the window into one message", async () => {
    const h = await openUp({ flushMs: 2 });
    h.bus.publish(due("orders"));
    expect(h.pub().sent()).toEqual([[due("orders")]]); // leading edge: no wait
    expect(h.pub().published[0]!.channel).toBe(CHANNEL);
    expect(JSON.parse(h.pub().published[0]!.message)).toMatchObject({ v: 1, from: "A" });

    h.bus.publish(due("orders", 500));
    h.bus.publish(due("jobs", 900));
    h.bus.publish(due("jobs", 700));
    h.bus.publish({ kind: "webhooks", table: "orders" });
    h.bus.publish({ kind: "webhooks", table: "orders" });
    h.bus.publish({ kind: "table", table: "jobs", change: "altered" });
    await h.clock.advance(1);
    expect(h.pub().published).toHaveLength(1);
    await h.clock.advance(1);
    expect(h.pub().sent()).toEqual([
      [due("orders")],
      [due("orders", 500), due("jobs", 700), { kind: "webhooks", table: "orders" }, { kind: "table", table: "jobs", change: "altered" }],
    ]);

    // A window with nothing in it closes; the next event goes out at once again.
    await h.clock.advance(10);
    expect(h.pub().published).toHaveLength(2);
    h.bus.publish(due("orders"));
    expect(h.pub().published).toHaveLength(3);
    await settle();
    expect(h.bus.stats).toMatchObject({ published: 3, publishedEvents: 6, dropped: 0 });
    await h.bus.close();
  });

  it("lets due now absorb a due time of the same table in a window", async () => {
    const h = await openUp({ flushMs: 2 });
    h.bus.publish(due("x"));
    h.bus.publish(due("orders", 500));
    h.bus.publish(due("orders"));
    h.bus.publish(due("orders", 100));
    await h.clock.advance(2);
    expect(h.pub().sent()[1]).toEqual([due("orders")]);
    await h.bus.close();
  });

  it("drops and counts publishes while the publisher is down, and sends none of them later", async () => {
    const h = await openUp();
    h.pub().drop(new Error("read ECONNRESET"));
    expect(h.bus.status()).toMatchObject({ state: "down", lastError: expect.stringContaining("ECONNRESET") });
    h.bus.publish(due("a"));
    h.bus.publish(due("b"));
    h.bus.publish(due("c"));
    expect(h.bus.stats.dropped).toBe(3);
    h.pub().up();
    await h.clock.advance(100);
    expect(h.pub().published).toEqual([]);
    expect(h.bus.status().state).toBe("up");
    h.bus.publish(due("d"));
    expect(h.pub().sent()).toEqual([[due("d")]]);
    await h.bus.close();
  });

  it("counts the events of a message Redis refused as dropped", async () => {
    const h = await openUp();
    h.pub().publish_ = "fail";
    h.bus.publish(due("a"));
    await settle();
    expect(h.bus.stats).toMatchObject({ dropped: 1, published: 0 });
    await h.bus.close();
  });
});

describe("RedisBus: health", () => {
  it("goes down when a PING is not answered in time and up again when one is", async () => {
    const h = await openUp({ pingMs: 1_000 });
    h.pub().ping_ = "hang";
    await h.clock.advance(1_000); // the next round starts
    expect(h.bus.status().state).toBe("up");
    await h.clock.advance(1_000); // ...and times out
    expect(h.bus.status()).toMatchObject({ state: "down", lastError: expect.stringContaining("PING") });
    expect(h.bus.status().since).toBe(h.clock.now());

    h.pub().ping_ = "answer";
    await h.clock.advance(1_000);
    expect(h.bus.status().state).toBe("up");
    expect(h.states()).toEqual(["up", "down", "up"]);
    await h.bus.close();
  });

  it("drops both connections after three unanswered PINGs in a row (a half-open socket)", async () => {
    const h = await openUp({ pingMs: 1_000 });
    h.sub().ping_ = "hang";
    await h.clock.advance(5_000);
    expect(h.sub().disconnects).toEqual([]);
    await h.clock.advance(1_000);
    expect(h.pub().disconnects).toEqual([true]);
    expect(h.sub().disconnects).toEqual([true]);
    await h.bus.close();
  });

  it("subscribes again after the subscriber comes back, then calls onResync('reconnected')", async () => {
    const h = await openUp();
    h.sub().drop(new Error("read ECONNRESET"));
    expect(h.bus.status().state).toBe("down");
    await settle();
    expect(h.resyncs).toEqual([]);

    h.sub().up();
    await settle();
    expect(h.sub().subscribed).toEqual([CHANNEL, CHANNEL]);
    expect(h.resyncs).toEqual(["reconnected"]);
    expect(h.bus.status().state).toBe("up");
    expect(h.bus.stats.reconnects).toBe(1);
    expect(h.states()).toEqual(["up", "down", "up"]);
    await h.bus.close();
  });
});

describe("RedisBus: closing", () => {
  it("sends a pending merged publish, quits both connections, stops its timers and is idempotent", async () => {
    const h = await openUp({ flushMs: 50 });
    h.bus.publish(due("a"));
    h.bus.publish(due("b"));
    const first = h.bus.close();
    expect(h.bus.close()).toBe(first);
    await first;
    expect(h.pub().sent()).toEqual([[due("a")], [due("b")]]);
    expect(h.pub().quits).toBe(1);
    expect(h.sub().quits).toBe(1);
    expect(h.bus.status().state).toBe("closed");
    expect(h.states()).toEqual(["up", "closed"]);
    expect(h.clock.pendingTimers).toBe(0);

    h.deliver("B", [due("late")]);
    h.bus.publish(due("late"));
    await settle();
    expect(h.received).toEqual([]);
    expect(h.pub().published).toHaveLength(2);
  });

  it("closes while still connecting, and open() then resolves", async () => {
    const h = setup({ reachable: false });
    const opened = h.bus.open();
    await settle();
    await h.bus.close();
    await opened;
    expect(h.bus.status().state).toBe("closed");
    expect(h.clock.pendingTimers).toBe(0);
  });
});

describe("reconnectDelayMs", () => {
  const backoff = { minMs: 100, maxMs: 5_000 };

  it("doubles from minMs with each attempt and stops at maxMs", () => {
    const delays = Array.from({ length: 9 }, (_, i) => reconnectDelayMs(i + 1, backoff, () => 0));
    expect(delays).toEqual([100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000, 5_000]);
    expect(reconnectDelayMs(10_000, backoff, () => 0)).toBe(5_000);
    expect(reconnectDelayMs(0, backoff, () => 0)).toBe(100);
  });

  it("is shortened at random by at most a fifth", () => {
    expect(reconnectDelayMs(3, backoff, () => 0.5)).toBe(360);
    for (let attempt = 1; attempt < 20; attempt++) {
      const full = reconnectDelayMs(attempt, backoff, () => 0);
      const d = reconnectDelayMs(attempt, backoff, Math.random);
      expect(d).toBeGreaterThanOrEqual(full * 0.8);
      expect(d).toBeLessThanOrEqual(full);
    }
  });

  it("is what ioredis's retryStrategy uses, with offline queueing and auto-resubscribe off", () => {
    const opts = ioredisOptions(backoff, () => 0);
    expect(opts).toMatchObject({ lazyConnect: true, enableOfflineQueue: false, autoResubscribe: false });
    expect([1, 2, 3, 10].map((n) => opts.retryStrategy!(n))).toEqual([100, 200, 400, 5_000]);
  });
});
