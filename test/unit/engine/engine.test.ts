import { afterEach, describe, expect, it, vi } from "vitest";
import { Engine, type TableHandle } from "../../../src/engine/engine.js";
import { INSERTS_AT_ONCE } from "../../../src/manager/inserter.js";
import { ClosedError, OutcomeUnknownError, TableNotFoundError, UnavailableError } from "../../../src/errors.js";
import { APP_ID_NODES_END, drawAppIdNode, IdGenerator, SERVER_ID_NODES } from "../../../src/ids.js";
import { newId } from "../../../src/client/ids.js";
import { BATCHES_AT_ONCE } from "../../../src/manager/settler.js";
import { resolveOptions } from "../../../src/options.js";
import { FakeClock, settle } from "../../support/fake-clock.js";
import { MemoryStore } from "../../support/memory-store.js";
import { RecordingReceiver } from "../../support/receivers.js";

const engines: Engine[] = [];

function setup() {
  const clock = new FakeClock();
  const store = new MemoryStore();
  const engine = new Engine({ store, clock, random: () => 0.5, schemaRefreshMs: 5_000 });
  engines.push(engine);
  return { clock, store, engine };
}

afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close()));
});

describe("Engine", () => {
  it("opens and closes idempotently", async () => {
    const { engine } = setup();
    await engine.open();
    await engine.open();
    expect(engine.isOpen).toBe(true);
    await engine.close();
    await engine.close();
    expect(engine.isOpen).toBe(false);
  });

  it("refuses to subscribe to an unknown table or on a closed engine", async () => {
    const { engine } = setup();
    await expect(engine.table("orders")).rejects.toBeInstanceOf(ClosedError);
    await engine.open();
    await expect(engine.table("nope")).rejects.toBeInstanceOf(TableNotFoundError);
    await expect(engine.table("Bad-Name")).rejects.toThrow(/must match/);
  });

  it("creates a table once and changes its options on the second call", async () => {
    const { engine, store } = setup();
    await engine.open();
    const first = await engine.ensureTable("orders", { ackWaitMs: 5_000 });
    expect(first.created).toBe(true);
    expect(first.options.minBackoffMs).toBe(5_000);
    const second = await engine.ensureTable("orders", { batchSize: 3 });
    expect(second.created).toBe(false);
    expect(second.options).toMatchObject({ ackWaitMs: 5_000, batchSize: 3 });
    expect(store.tables.get("orders")?.options.batchSize).toBe(3);
    expect((await engine.table("orders")).options.batchSize).toBe(3);
  });

  it("follows tables created, altered and dropped outside the server at the next refresh", async () => {
    const { engine, store, clock } = setup();
    await engine.open();
    expect(engine.tableNames()).toEqual([]);
    await store.createTable("made_by_hand", resolveOptions({ batchSize: 4 }));
    await clock.advance(5_001);
    expect(engine.tableNames()).toEqual(["made_by_hand"]);
    const r = new RecordingReceiver();
    await (await engine.table("made_by_hand")).subscribe(r);
    await store.alterTableOptions("made_by_hand", resolveOptions({ batchSize: 7 }));
    await clock.advance(5_001);
    expect((await engine.table("made_by_hand")).options.batchSize).toBe(7);
    await store.dropTable("made_by_hand");
    await clock.advance(5_001);
    expect(engine.tableNames()).toEqual([]);
    expect(r.closedWith).toBe("table dropped");
  });

  it("does not let a refresh that read the schema before this server's create, alter or drop undo it", async () => {
    const { engine, store } = setup();
    await engine.open();
    await engine.ensureTable("altered", { batchSize: 3 });
    await engine.ensureTable("dropped", {});
    const discover = store.discoverTables.bind(store);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    vi.spyOn(store, "discoverTables").mockImplementationOnce(async () => {
      const before = await discover(); // read before the changes below...
      await held; // ...and answered after them
      return before;
    });
    const stale = engine.refresh();
    await engine.ensureTable("created", {});
    const r = new RecordingReceiver();
    await (await engine.table("created")).subscribe(r);
    await engine.ensureTable("altered", { batchSize: 7 });
    await engine.dropTable("dropped");
    release();
    await stale;
    const check = async () => {
      expect(engine.tableNames()).toEqual(["altered", "created"]);
      expect((await engine.table("altered")).options.batchSize).toBe(7);
      expect(r.closedWith).toBeUndefined();
    };
    await check();
    await engine.refresh(); // a read after the changes agrees
    await check();
  });

  it("tells table listeners about tables opened, dropped (here or elsewhere) and closed", async () => {
    const { engine, store, clock } = setup();
    const events: string[] = [];
    engine.watchTables({
      opened: (t) => events.push(`opened ${t}`),
      closed: (t, dropped) => events.push(`${dropped ? "dropped" : "closed"} ${t}`),
    });
    await store.createTable("found", resolveOptions({}));
    await engine.open();
    await engine.ensureTable("made", {});
    await engine.ensureTable("made", { batchSize: 3 }); // an option change is no event
    await engine.dropTable("made");
    await store.dropTable("found");
    await clock.advance(5_001);
    await engine.ensureTable("last", {});
    await engine.close();
    expect(events).toEqual(["opened found", "opened made", "dropped made", "dropped found", "opened last", "closed last"]);
  });

  it("finds a table made elsewhere at once when a request names it", async () => {
    const { engine, store } = setup();
    await engine.open();
    await store.createTable("fresh", resolveOptions({}));
    await expect((await engine.table("fresh")).describe()).resolves.toMatchObject({ name: "fresh" });
  });

  it("hands committed due messages straight to the cache, without a poll", async () => {
    const { engine, store, clock } = setup();
    await engine.open();
    await engine.ensureTable("orders", { batchSize: 10 });
    const orders = await engine.table("orders");
    const r = new RecordingReceiver();
    await orders.subscribe(r);
    await clock.advance(10);
    const polls = store.calls.readDue;
    const { ids } = await orders.enqueue([{ payload: '{"n":1}' }, { payload: '{"n":2}', priority: 1 }]);
    await settle();
    expect(r.batches).toHaveLength(1);
    expect(r.ids).toEqual([ids[1], ids[0]]);
    expect(r.batches[0]![1]!.payload).toBe('{"n":1}');
    expect(store.calls.readDue).toBe(polls);
  });

  it("reports ids that already exist as duplicates and does not overwrite them", async () => {
    const { engine, store } = setup();
    await engine.open();
    await engine.ensureTable("orders");
    const orders = await engine.table("orders");
    await orders.enqueue([{ id: "7", payload: '"first"' }]);
    const res = await orders.enqueue([
      { id: "7", payload: '"second"' },
      { id: "8", payload: "1" },
    ]);
    expect(res).toEqual({ ids: ["7", "8"], duplicates: ["7"] });
    expect(store.row("orders", "7")?.payload).toBe('"first"');
  });

  it("rejects bad messages before writing anything", async () => {
    const { engine, store } = setup();
    await engine.open();
    await engine.ensureTable("orders");
    const orders = await engine.table("orders");
    await expect(orders.enqueue([{ payload: "1" }, { payload: "2", priority: 256 }])).rejects.toThrow(/messages\[1\]\.priority/);
    await expect(orders.enqueue([{ id: "-1", payload: "1" }])).rejects.toThrow(/messages\[0\]\.id/);
    await expect(
      orders.enqueue([
        { id: "1", payload: "1" },
        { id: "18446744073709551616", payload: "2" },
      ]),
    ).rejects.toThrow(/messages\[1\]\.id/);
    await expect(orders.enqueue([{ delayMs: -5, payload: "1" }])).rejects.toThrow(/delayMs/);
    await expect(orders.ack(["18446744073709551616"])).rejects.toThrow(/ids\[0\]/);
    expect(store.calls.insertMessages).toBe(0);
  });

  it("acks through the table's manager", async () => {
    const { engine } = setup();
    await engine.open();
    await engine.ensureTable("orders");
    const orders = await engine.table("orders");
    const { ids } = await orders.enqueue([{ payload: "1" }, { payload: "2" }]);
    expect(await orders.ack(ids)).toBe(2);
    expect(await orders.ack(ids)).toBe(0);
    expect((await orders.describe()).stats).toMatchObject({ acked: 2, ready: 0 });
  });

  it("drops a table and ends its subscriptions", async () => {
    const { engine } = setup();
    await engine.open();
    await engine.ensureTable("orders");
    const orders = await engine.table("orders");
    const r = new RecordingReceiver();
    await orders.subscribe(r);
    expect(await engine.dropTable("orders")).toBe(true);
    expect(r.closedWith).toBe("table dropped");
    expect(await engine.dropTable("orders")).toBe(false);
  });
});

describe("IdGenerator", () => {
  it("makes unique ids that grow with time, even within one millisecond", () => {
    const clock = new FakeClock();
    const gen = new IdGenerator(clock, () => 0.3);
    const ids = Array.from({ length: 10_000 }, () => BigInt(gen.next()));
    expect(new Set(ids).size).toBe(ids.length);
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!).toBe(true);
    const before = ids.at(-1)!;
    void clock.advance(1);
    expect(BigInt(gen.next()) > before).toBe(true);
    expect(BigInt(gen.next()) < 2n ** 63n).toBe(true);
  });

  it("draws a server's id node from 0..SERVER_ID_NODES-1, and an application's from the rest", () => {
    const node = (id: string) => Number((BigInt(id) >> 12n) & 1023n);
    for (const r of [0, 0.5, 0.999999]) {
      expect(node(new IdGenerator(new FakeClock(), () => r).next())).toBeLessThan(SERVER_ID_NODES);
      const app = node(
        new IdGenerator(
          new FakeClock(),
          () => 0.3,
          drawAppIdNode(() => r),
        ).next(),
      );
      expect(app).toBeGreaterThanOrEqual(SERVER_ID_NODES);
      expect(app).toBeLessThan(APP_ID_NODES_END);
    }
    expect(node(newId())).toBeGreaterThanOrEqual(SERVER_ID_NODES); // the client's ids
  });
});

describe("Engine: rows leased at insert", () => {
  async function subscribed(options = {}) {
    const { engine, store, clock } = setup();
    await engine.open();
    await engine.ensureTable("orders", { ackWaitMs: 10_000, minBackoffMs: 10_000, pollIntervalMs: 1_000, batchSize: 10, ...options });
    const orders = await engine.table("orders");
    const r = new RecordingReceiver();
    await orders.subscribe(r);
    await clock.advance(10);
    return { engine, store, clock, r, orders };
  }

  it("writes a due message already leased when a subscriber can take it, and skips the post-send postpone", async () => {
    const { store, clock, r, orders } = await subscribed();
    const { ids } = await orders.enqueue([{ payload: "1" }]);
    await settle();
    expect(r.batches.flat().map((m) => [m.id, m.epoch])).toEqual([[ids[0], 0]]);
    expect(store.row("orders", ids[0]!)).toMatchObject({ epoch: 1, timeNext: clock.now() + 20_000 });
    expect(store.calls.claim).toBe(0);
  });

  it("redelivers an unacked leased message when its lease ends, with epoch 1", async () => {
    const { clock, r, orders } = await subscribed();
    const { ids } = await orders.enqueue([{ payload: "1" }]);
    await clock.advance(19_000);
    expect(r.ids).toEqual(ids);
    await clock.advance(2_000);
    expect(r.batches.flat().map((m) => m.epoch)).toEqual([0, 1]);
  });

  it("inserts normally when nobody is subscribed, or the message is delayed", async () => {
    const { engine, store, clock } = setup();
    await engine.open();
    await engine.ensureTable("orders");
    const orders = await engine.table("orders");
    const { ids } = await orders.enqueue([{ payload: "1" }]);
    expect(store.row("orders", ids[0]!)).toMatchObject({ epoch: 0, timeNext: clock.now() });
    await orders.subscribe(new RecordingReceiver());
    const later = await orders.enqueue([{ payload: "2", delayMs: 5_000 }]);
    expect(store.row("orders", later.ids[0]!)).toMatchObject({ epoch: 0, timeNext: clock.now() + 5_000 });
  });

  it("renews a leased message's lease, fenced, before a send that comes with less than an ack wait of it left", async () => {
    // Lease = ack wait 10 s + backoff 1 s: a send 2 s after the insert would leave 9 s < 10 s.
    const { store, clock, r, orders } = await subscribed({ batchSize: 1, minBackoffMs: 1_000 });
    r.holdSends = true;
    const inserted = clock.now();
    const { ids } = await orders.enqueue([{ payload: "1" }, { payload: "2" }]);
    await settle();
    expect(r.ids).toEqual([ids[0]]); // sent on its insert lease; the second waits behind a busy receiver
    await clock.advance(2_000);
    r.holdSends = false;
    r.release();
    await clock.advance(10);
    expect(r.ids).toEqual(ids);
    // Their epoch already counted this delivery: the second's lease is renewed as a first delivery's, epoch 1,
    // before its send; the first's after its send, which took 2 s (a slow send renews its batch's lease).
    expect(store.calls.updateDeliveries).toBe(2);
    expect(store.calls.claim).toBe(0);
    for (const id of ids) expect(store.row("orders", id)).toMatchObject({ epoch: 1, timeNext: inserted + 2_000 + 11_000 });
  });

  it("makes queued leased messages due again at once when the last subscriber leaves", async () => {
    const { engine, store, clock } = setup();
    await engine.open();
    await engine.ensureTable("orders", { ackWaitMs: 10_000, batchSize: 1 });
    const orders = await engine.table("orders");
    const r = new RecordingReceiver();
    r.holdSends = true;
    const sub = await orders.subscribe(r);
    await clock.advance(10);
    const { ids } = await orders.enqueue([{ payload: "1" }, { payload: "2" }]);
    await settle();
    expect(store.row("orders", ids[1]!)!.epoch).toBe(1); // leased, queued behind the busy receiver
    sub.unsubscribe();
    await settle();
    // Due now, and its epoch back to 0: the delivery its lease recorded never happened (maxAttempts).
    expect(store.row("orders", ids[1]!)).toMatchObject({ timeNext: clock.now(), epoch: 0 });
    r.release();
  });
});

describe("Engine: rows leased at insert, when the table closes", () => {
  it("makes a leased message due again at once when its table closes before it reached the cache", async () => {
    const { engine, store, clock } = setup();
    await engine.open();
    await engine.ensureTable("orders", { ackWaitMs: 10_000 });
    const orders = await engine.table("orders");
    const releaseRead = store.hold("readDue");
    orders.subscribe(new RecordingReceiver()); // the first subscriber's poll holds the cache-management mutex across its read
    await settle();
    const { ids } = await orders.enqueue([{ payload: "1" }]);
    expect(store.row("orders", ids[0]!)!.epoch).toBe(1); // leased; its way into the cache waits for the poll
    const closing = engine.close();
    await settle();
    releaseRead();
    await closing;
    await settle();
    expect(store.row("orders", ids[0]!)).toMatchObject({ timeNext: clock.now(), epoch: 0 });
  });
});

describe("Engine: coalesced enqueues", () => {
  it("writes concurrent enqueues to one table in shared INSERTs and reports duplicates per request", async () => {
    const { engine, store } = setup();
    await engine.open();
    await engine.ensureTable("orders");
    const orders = await engine.table("orders");
    const release = store.hold("insertMessages");
    const first = orders.enqueue([{ id: "1", payload: "1" }]);
    await settle(1);
    const others = Array.from({ length: 10 }, (_, i) =>
      orders.enqueue([
        { id: String(i + 2), payload: "x" },
        { id: "1", payload: "dup" },
      ]),
    );
    await settle(1);
    release();
    await first;
    const results = await Promise.all(others);
    expect(store.calls.insertMessages).toBe(2); // 11 requests: the first, then the 10 that arrived while it ran
    expect(results.map((r) => r.duplicates)).toEqual(Array.from({ length: 10 }, () => ["1"]));
    expect(store.row("orders", "1")?.payload).toBe("1");
  });
});

describe("Engine: coalesced acks and postpones", () => {
  async function withRows(n: number) {
    const s = setup();
    await s.engine.open();
    await s.engine.ensureTable("orders");
    const orders = await s.engine.table("orders");
    await orders.enqueue(Array.from({ length: n }, (_, i) => ({ id: String(i + 1), payload: "1" })));
    return { ...s, orders };
  }

  /** Acks one id per request, each in a tick of its own so that each gets a writer of its own while one is free. */
  async function ackApart(orders: TableHandle, ids: string[]): Promise<Array<Promise<number>>> {
    const acks: Array<Promise<number>> = [];
    for (const id of ids) {
      acks.push(orders.ack([id]));
      await settle(1);
    }
    return acks;
  }

  /** One ack request per writer, ids 1 to w (each written alone: all the table's ack writers busy). */
  const w = BATCHES_AT_ONCE;
  const writerIds = Array.from({ length: w }, (_, i) => String(i + 1));
  const ones = writerIds.map(() => 1);

  it("writes acks that arrive while the ack writers are busy in one transaction, counting each request's own", async () => {
    const { orders, store } = await withRows(w + 5);
    const release = store.hold("ack");
    const busy = await ackApart(orders, writerIds); // one transaction each: every writer busy
    expect(store.calls.ack).toBe(w);
    // Queued behind them, and shared: an id in two requests counts for the first, an unknown id for none,
    // an id a busy writer acked for none.
    const [a, b, c, d] = [w + 1, w + 2, w + 3, w + 4].map(String);
    const queued = [orders.ack([a!, b!]), orders.ack([b!, c!, "99"]), orders.ack(["1", d!])];
    await settle(1);
    expect(store.calls.ack).toBe(w);
    release();
    expect(await Promise.all(busy)).toEqual(ones);
    expect(await Promise.all(queued)).toEqual([2, 1, 1]);
    expect(store.calls.ack).toBe(w + 1);
    for (let id = 1; id <= w + 4; id++) expect(store.row("orders", String(id))?.timeAcked).not.toBeNull();
  });

  it("batches postpones with acks, each request with its own change and time, in arrival order", async () => {
    const { orders, store, clock } = await withRows(w + 2);
    const release = store.hold("ack");
    const busy = await ackApart(orders, writerIds);
    const postponedAt = clock.now();
    const [a, b] = [String(w + 1), String(w + 2)];
    const queued: Array<Promise<number>> = [];
    for (const request of [() => orders.postpone([a, b], 5_000), () => orders.ack([a]), () => orders.postpone([a], 1_000)]) {
      queued.push(request());
      await settle(1);
    }
    release();
    expect(await Promise.all(busy)).toEqual(ones);
    expect(await Promise.all(queued)).toEqual([2, 1, 0]); // a was acked by the request before the last
    expect(store.calls).toMatchObject({ ack: w + 1, reschedule: 1 }); // the three shared one batch
    expect(store.row("orders", a)?.timeAcked).not.toBeNull();
    expect(store.row("orders", b)).toMatchObject({ timeAcked: null, timeNext: postponedAt + 5_000 });
  });

  it("fails every ack of a batch the store refused, writing none of them; each succeeds when sent again", async () => {
    const { orders, store } = await withRows(w + 2);
    const release = store.hold("ack");
    const busy = await ackApart(orders, writerIds);
    const queued = [orders.ack([String(w + 1)]), orders.ack([String(w + 2)])];
    await settle(1);
    store.failNext("ack", w + 1, () => new Error("refused"));
    release();
    for (const p of [...busy, ...queued]) await expect(p).rejects.toThrow("refused");
    expect(store.calls.ack).toBe(w + 1); // the two queued acks shared one transaction
    const all = Array.from({ length: w + 2 }, (_, i) => String(i + 1));
    for (const id of all) expect(store.row("orders", id)?.timeAcked).toBeNull();
    expect(await Promise.all(all.map((id) => orders.ack([id])))).toEqual(all.map(() => 1));
  });

  it("refuses an ack that cannot get a writer within the write timeout as unavailable, writing nothing", async () => {
    const { orders, store, clock } = await withRows(w + 1);
    const release = store.hold("ack");
    const stuck = await ackApart(orders, writerIds);
    const waiting = orders.ack([String(w + 1)]);
    waiting.catch(() => {});
    await clock.advance(10_000);
    await expect(waiting).rejects.toBeInstanceOf(UnavailableError);
    release();
    expect(await Promise.all(stuck)).toEqual(ones);
    expect(store.row("orders", String(w + 1))?.timeAcked).toBeNull();
  });
});

describe("Engine: writes whose answer was lost", () => {
  async function open() {
    const s = setup();
    await s.engine.open();
    await s.engine.ensureTable("orders");
    return { ...s, orders: await s.engine.table("orders") };
  }

  it("sends a lost INSERT again and answers with every id; a server-made id it finds is this request's, not a duplicate", async () => {
    const { store, orders } = await open();
    store.loseAnswerNext("insertMessages");
    const res = await orders.enqueue([{ payload: "1" }, { payload: "2" }]);
    expect(store.calls.insertMessages).toBe(2);
    expect(res.duplicates).toEqual([]);
    expect(res.ids.map((id) => store.row("orders", id)?.payload)).toEqual(["1", "2"]);
  });

  it("lists a client's id that a retry finds as a duplicate: it may have been there before", async () => {
    const { store, orders } = await open();
    store.loseAnswerNext("insertMessages");
    const res = await orders.enqueue([{ id: "5", payload: "1" }, { payload: "2" }]);
    expect(res.duplicates).toEqual(["5"]);
    expect(res.ids[0]).toBe("5");
  });

  it("fails with OutcomeUnknownError naming every id of the request when no retry gets an answer", async () => {
    const { store, clock, orders } = await open();
    store.loseAnswerNext("insertMessages", 100); // every try takes effect (or finds the rows), none answers
    const result = orders.enqueue([{ id: "5", payload: "1" }, { payload: "2" }]);
    result.catch(() => {});
    await clock.advance(10_000); // the default write timeout
    const err = await result.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutcomeUnknownError);
    expect((err as OutcomeUnknownError).ids).toEqual(["5", expect.stringMatching(/^\d+$/)]);
    expect(store.row("orders", "5")?.payload).toBe("1"); // it was written: "nothing was written" would be false
  });

  it("refuses an enqueue that cannot get a writer within the write timeout as unavailable, writing nothing", async () => {
    const { store, clock, orders } = await open();
    const release = store.hold("insertMessages");
    const stuck: Array<Promise<unknown>> = [];
    for (let i = 1; i <= INSERTS_AT_ONCE; i++) {
      stuck.push(orders.enqueue([{ id: String(i), payload: "1" }])); // one statement each: every writer busy
      await settle(1);
    }
    expect(store.calls.insertMessages).toBe(INSERTS_AT_ONCE);
    const waiting = orders.enqueue([{ id: "9", payload: "1" }]);
    waiting.catch(() => {});
    await clock.advance(10_000);
    await expect(waiting).rejects.toBeInstanceOf(UnavailableError);
    release();
    await Promise.all(stuck);
    expect(store.row("orders", "9")).toBeUndefined();
  });

  it("sends a lost ack again; the ack is committed and answered", async () => {
    const { store, orders } = await open();
    const { ids } = await orders.enqueue([{ payload: "1" }]);
    store.loseAnswerNext("ack");
    await orders.ack(ids);
    expect(store.calls.ack).toBe(2);
    expect(store.row("orders", ids[0]!)?.timeAcked).not.toBeNull();
  });

  it("fails an ack or postpone whose outcome stays unknown with OutcomeUnknownError naming its ids", async () => {
    const { store, clock, orders } = await open();
    store.loseAnswerNext("ack", 100);
    store.loseAnswerNext("reschedule", 100);
    const ack = orders.ack(["1", "2"]).catch((e: unknown) => e);
    const postpone = orders.postpone(["3"], 1_000).catch((e: unknown) => e);
    await clock.advance(10_000);
    expect(await ack).toMatchObject({ code: "outcome_unknown", ids: ["1", "2"] });
    expect(await postpone).toMatchObject({ code: "outcome_unknown", ids: ["3"] });
  });
});

describe("Engine among several nodes", () => {
  it("tells the other nodes of its table changes and of rows due, and follows theirs at once", async () => {
    const clock = new FakeClock();
    const store = new MemoryStore();
    const events: unknown[] = [];
    const a = new Engine({ store, clock, random: () => 0.5, schemaRefreshMs: 60_000, signal: (e) => events.push(e), idNode: 7 });
    const b = new Engine({ store, clock, random: () => 0.5, schemaRefreshMs: 60_000 });
    engines.push(a, b);
    await Promise.all([a.open(), b.open()]);
    await a.ensureTable("orders", { ackWaitMs: 10_000 });
    await a.ensureTable("orders", { ackWaitMs: 20_000 });
    const { ids } = await (await a.table("orders")).enqueue([{ payload: "1" }]); // nobody subscribed on A
    await settle();
    expect(events).toEqual([
      { kind: "table", table: "orders", change: "created" },
      { kind: "table", table: "orders", change: "altered" },
      { kind: "due", table: "orders" },
    ]);
    // The id's node bits are the slot it was given.
    expect((BigInt(ids[0]!) >> 12n) & 1023n).toBe(7n);

    // B hears of the table at once (not at its 60 s refresh), and of the row.
    expect(b.has("orders")).toBe(false);
    b.applyPeerEvents([events[0] as never]);
    await settle();
    expect(b.has("orders")).toBe(true);
    const r = new RecordingReceiver();
    (await b.table("orders")).subscribe(r);
    await clock.advance(10);
    expect(r.ids).toEqual(ids);

    await a.dropTable("orders");
    expect(events.at(-1)).toEqual({ kind: "table", table: "orders", change: "dropped" });
  });
  it("passes a wake on to the other nodes, who poll for the rows and drop the ids it names", async () => {
    const clock = new FakeClock();
    const store = new MemoryStore();
    const events: unknown[] = [];
    const a = new Engine({ store, clock, random: () => 0.5, schemaRefreshMs: 60_000, signal: (e) => events.push(e) });
    const b = new Engine({ store, clock, random: () => 0.5, schemaRefreshMs: 60_000 });
    engines.push(a, b);
    await Promise.all([a.open(), b.open()]);
    await a.ensureTable("events", { pollIntervalMs: 60_000 });
    b.applyPeerEvents([events[0] as never]);
    await settle();
    const r = new RecordingReceiver();
    (await b.table("events")).subscribe(r);
    await clock.advance(10);
    store.seed("events", [{ id: "5", timeNext: clock.now() - 1 }]); // committed by the application
    events.length = 0;
    (await a.table("events")).wake({ dueAt: [clock.now() + 1_000], forget: ["4"] });
    expect(events).toEqual([{ kind: "wake", table: "events", dueAt: [clock.now() + 1_000], forget: ["4"] }]);
    b.applyPeerEvents(events as never);
    await clock.advance(10);
    expect(r.ids).toEqual(["5"]); // at once, not at B's poll 60 s away
  });
});
