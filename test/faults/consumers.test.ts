/**
 * Misbehaving consumers: one that never acks, one that stops reading its socket, one that disconnects in
 * the middle of a batch, and 300 that connect and vanish, all while a well-behaved consumer keeps
 * receiving. Every message must reach the well-behaved consumer within ack wait + backoff of its last
 * delivery (plus a margin), and the server's per-table state must shrink back to the live consumers.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/server.js";
import { describeEachStore, uniqueTableName, useOwnStoreDatabase } from "../support/database.js";
import { startTestServer } from "../support/server.js";
import { sleep, waitUntil } from "../support/wait.js";
import { Consumer, type Delivery, openRowsReader, recordFigures, request, type RowsReader } from "./support.js";

const OPTIONS = { ackWaitMs: 1_000, minBackoffMs: 500, maxBackoffMs: 1_000, pollIntervalMs: 200, batchSize: 10, cacheSize: 2_000 };
/** A delivery cycle: an unacked message is due again after the ack wait plus at most maxBackoff. */
const CYCLE_MS = OPTIONS.ackWaitMs + OPTIONS.maxBackoffMs;
const MESSAGES = 400;
const PAYLOAD_BYTES = 64 * 1024;
const VANISHERS = 300;
const VANISH_WAVE = 50;
/** The slow consumer reads for 30 ms, then not for this long. */
const SLOW_PAUSE_MS = 1_000;
/**
 * Slack on each observed wait: the slow reader's frames arrive up to SLOW_PAUSE_MS after they were sent,
 * and this 2-core machine runs the server, the database and 300 churning sockets at once.
 */
const MARGIN_MS = SLOW_PAUSE_MS + 1_000;
/** Longest wait allowed across `cycles` deliveries (some deliveries, to sockets that vanished, go unseen). */
const allowedWait = (cycles: number) => Math.max(1, cycles) * (CYCLE_MS + OPTIONS.pollIntervalMs) + MARGIN_MS;

describeEachStore("fault: misbehaving consumers", (kind) => {
  const database = useOwnStoreDatabase(kind, "faults_consumers");
  let server: RunningServer;
  let store: RowsReader;

  beforeAll(async () => {
    server = await startTestServer(database.url);
    store = openRowsReader(database.url);
  });
  afterAll(async () => {
    await server?.close();
    await store?.close();
  });

  /** The server side of every WebSocket: how many, and the most bytes any has buffered for sending. */
  const sockets = () => {
    const clients = [...server.app.websocketServer.clients];
    return { count: clients.length, maxBuffered: Math.max(0, ...clients.map((s) => s.bufferedAmount)) };
  };

  it("keeps delivering to a good consumer; redelivers what the others hold; state shrinks back", async () => {
    const table = uniqueTableName("consumers");
    expect((await request(server.url, "PUT", `/v1/tables/${table}`, OPTIONS)).status).toBe(201);
    const log: Delivery[] = [];
    const goodAcked = new Set<string>();
    const consumer = (name: string, opts: ConstructorParameters<typeof Consumer>[3]) =>
      new Consumer(server.url, table, name, { log, keepPayloads: false, ...opts });

    const good = await consumer("good", { maxInFlight: 50, confirmed: goodAcked }).ready();
    const neverAcks = await consumer("never-acks", { maxInFlight: 5, mode: "none" }).ready();
    // Reads in short bursts: 30 ms every SLOW_PAUSE_MS (meanwhile the socket buffers take what the server
    // writes; one that stops reading altogether is the next test). It never acks.
    const slow = await consumer("slow", { maxInFlight: 1_000, mode: "none" }).ready();
    let slowReading = true;
    const slowReader = (async () => {
      while (slowReading) {
        slow.socket.pause();
        await sleep(SLOW_PAUSE_MS);
        slow.socket.resume();
        await sleep(30);
      }
    })();
    const quitter = consumer("quitter", { maxInFlight: 20, mode: "none" });
    quitter.socket.on("message", () => {
      if (quitter.received.length === 0 || !quitter.isOpen) return;
      quitter.ack(quitter.received.slice(0, Math.floor(quitter.received.length / 2))); // half a batch, then gone
      quitter.terminate();
    });
    await quitter.ready();

    // Load: MESSAGES payloads of PAYLOAD_BYTES, in batches of 10, over ~4 s.
    const filler = "x".repeat(PAYLOAD_BYTES);
    const enqueuedAt = new Map<string, number>();
    const producer = async () => {
      for (let i = 0; i < MESSAGES / 10; i++) {
        const res = await request(server.url, "POST", `/v1/tables/${table}/messages`, {
          messages: Array.from({ length: 10 }, (_, j) => ({ payload: { n: i * 10 + j, filler } })),
        });
        expect(res.status).toBe(201);
        for (const id of res.body.ids as string[]) enqueuedAt.set(id, res.doneAt);
        await sleep(100);
      }
    };
    // Meanwhile 300 subscribers that connect and vanish, in waves: some before the upgrade completes, some
    // right after it, some after their first batch arrives.
    const vanishers = async () => {
      let refused = 0;
      for (let wave = 0; wave < VANISHERS / VANISH_WAVE; wave++) {
        await Promise.all(
          Array.from({ length: VANISH_WAVE }, async (_, i) => {
            const c = consumer(`vanish-${wave}-${i}`, { maxInFlight: 10, mode: "none" });
            const how = i % 3;
            if (how === 0)
              c.terminate(); // gone during the handshake
            else {
              try {
                await c.ready();
                if (how === 2) await waitUntil(() => c.received.length > 0 || !c.isOpen, "a batch", 300).catch(() => {});
              } catch {
                refused++;
              }
              c.terminate();
            }
            await c.closed;
          }),
        );
        await sleep(100);
      }
      return refused;
    };
    const sampler = { maxBuffered: 0, maxCached: 0, maxLeased: 0, maxReceivers: 0 };
    let sampling = true;
    const sample = async () => {
      while (sampling) {
        const snap = server.engine.snapshot(table)!;
        sampler.maxCached = Math.max(sampler.maxCached, snap.cached);
        sampler.maxLeased = Math.max(sampler.maxLeased, snap.held);
        sampler.maxReceivers = Math.max(sampler.maxReceivers, snap.receivers);
        sampler.maxBuffered = Math.max(sampler.maxBuffered, sockets().maxBuffered);
        await sleep(20);
      }
    };
    const sampling$ = sample();
    const [, vanishRefused] = await Promise.all([producer(), vanishers()]);
    const loadEndedAt = Date.now();

    // Every message is delivered to a consumer that acks, and acked (in the database), in time.
    const ids = [...enqueuedAt.keys()];
    for (const deadline = Date.now() + 15_000; ; await sleep(100)) {
      const rows = await store.rows(table);
      if (ids.every((id) => rows.get(id)?.acked === true)) break;
      if (Date.now() > deadline) {
        const missing = ids.filter((id) => rows.get(id)?.acked !== true);
        throw new Error(
          `not acked: ${missing.length}, e.g. ${JSON.stringify(missing.slice(0, 3).map((id) => log.filter((d) => d.id === id).map((d) => [d.by, d.epoch, d.at - enqueuedAt.get(id)!])))}`,
        );
      }
    }
    const allAckedAfterLoadMs = Date.now() - loadEndedAt;

    // Per message: the wait from its enqueue to its first delivery, and between deliveries. Epochs count
    // every delivery, including unseen ones (to a socket that vanished before reading its frame), so a wait
    // spanning k deliveries may take k delivery cycles.
    const byId = new Map<string, Delivery[]>();
    for (const d of log) byId.set(d.id, [...(byId.get(d.id) ?? []), d]);
    const overdue: Array<{ id: string; waitedMs: number; allowedMs: number; deliveries: unknown }> = [];
    let firstMax = 0;
    let perCycleMax = 0;
    for (const [id, enqueued] of enqueuedAt) {
      const seen = byId.get(id) ?? [];
      let prev = { at: enqueued, epoch: 0 };
      for (const d of seen) {
        const cycles = d.epoch - prev.epoch;
        const waited = d.at - prev.at;
        if (prev.at === enqueued) firstMax = Math.max(firstMax, waited);
        else perCycleMax = Math.max(perCycleMax, waited / Math.max(1, cycles));
        if (waited > allowedWait(cycles)) {
          overdue.push({
            id,
            waitedMs: waited,
            allowedMs: allowedWait(cycles),
            deliveries: seen.map((x) => [x.by, x.epoch, x.at - enqueued]),
          });
        }
        prev = d;
      }
    }

    // The slow consumer reads again, the others leave: the table's state shrinks to what is live.
    slowReading = false;
    await slowReader;
    neverAcks.close();
    await waitUntil(() => server.engine.snapshot(table)!.receivers === 2, "receivers back to the two live consumers", 5_000);
    sampling = false;
    await sampling$;
    const after = server.engine.snapshot(table)!;
    const figures = {
      messages: MESSAGES,
      payloadBytes: PAYLOAD_BYTES,
      deliveries: log.length,
      toGood: good.received.length,
      toNeverAcks: neverAcks.received.length,
      toSlow: slow.received.length,
      toQuitter: quitter.received.length,
      toVanishers: log.filter((d) => d.by.startsWith("vanish")).length,
      vanishers: VANISHERS,
      vanishersRefused: vanishRefused,
      firstDeliveryMaxMs: firstMax,
      redeliveryWaitPerCycleMaxMs: Math.round(perCycleMax),
      cycleMs: CYCLE_MS,
      overdue: overdue.length,
      allAckedAfterLoadMs,
      maxReceivers: sampler.maxReceivers,
      maxCached: sampler.maxCached,
      maxLeased: sampler.maxLeased,
      maxSocketBufferedBytes: sampler.maxBuffered,
      receiversAfter: after.receivers,
      leasedAfter: after.held,
      cachedAfter: after.cached,
    };
    recordFigures(kind === "mysql" ? "consumers" : `consumers-${kind}`, figures);

    expect(good.received.length).toBeGreaterThanOrEqual(MESSAGES / 2);
    expect(neverAcks.received.length).toBeGreaterThan(0);
    expect(quitter.received.length).toBeGreaterThan(0);
    expect(overdue.slice(0, 5)).toEqual([]);
    // Bounded state: cache within its size, held messages within the live consumers' credit, one batch per socket.
    expect(sampler.maxCached).toBeLessThanOrEqual(OPTIONS.cacheSize);
    expect(sampler.maxLeased).toBeLessThanOrEqual(50 + 5 + 1_000 + 20 + VANISH_WAVE * 10);
    expect(sampler.maxBuffered).toBeLessThanOrEqual(2 * OPTIONS.batchSize * (PAYLOAD_BYTES + 200));
    expect(after.receivers).toBe(2);
    await waitUntil(() => sockets().count === 2, "server-side sockets back to the two live consumers", 5_000);
    good.close();
    slow.close();
    await waitUntil(
      () => server.engine.snapshot(table)!.receivers === 0 && server.engine.snapshot(table)!.held === 0,
      "no receivers, nothing held",
      5_000,
    );
  }, 60_000);

  it("holds back at most one batch for a consumer that stops reading, and buffers at most one frame for it", async () => {
    const table = uniqueTableName("stalled");
    expect((await request(server.url, "PUT", `/v1/tables/${table}`, OPTIONS)).status).toBe(201);
    const log: Delivery[] = [];
    const good = await new Consumer(server.url, table, "good", { maxInFlight: 50, log, keepPayloads: false }).ready();
    const stalled = await new Consumer(server.url, table, "stalled", {
      maxInFlight: 1_000,
      mode: "none",
      log,
      keepPayloads: false,
    }).ready();
    stalled.socket.pause(); // reads nothing from now on: the socket buffers fill, then the server's write waits

    const stalledSocket = () => [...server.app.websocketServer.clients].reduce((max, s) => Math.max(max, s.bufferedAmount), 0);
    let maxBuffered = 0;
    let maxLeased = 0;
    const filler = "x".repeat(PAYLOAD_BYTES);
    let enqueued = 0;
    // Enqueue until the server has had to hold a frame back (its socket buffers are full), at most 600.
    while (enqueued < 600 && (maxBuffered === 0 || enqueued < 200)) {
      const res = await request(server.url, "POST", `/v1/tables/${table}/messages`, {
        messages: Array.from({ length: 10 }, (_, j) => ({ payload: { n: enqueued + j, filler } })),
      });
      expect(res.status).toBe(201);
      enqueued += 10;
      await sleep(20);
      maxBuffered = Math.max(maxBuffered, stalledSocket());
      maxLeased = Math.max(maxLeased, server.engine.snapshot(table)!.held);
    }
    const loadEndedAt = Date.now();

    // Everything but the batch stuck in the write to the stalled socket reaches the good consumer.
    const unacked = async () => (await store.rows(table)).size - [...(await store.rows(table)).values()].filter((r) => r.acked).length;
    for (const deadline = Date.now() + 15_000; (await unacked()) > OPTIONS.batchSize; await sleep(100)) {
      maxBuffered = Math.max(maxBuffered, stalledSocket());
      if (Date.now() > deadline) throw new Error(`still unacked: ${await unacked()}`);
    }
    const othersAckedAfterMs = Date.now() - loadEndedAt;
    const heldBack = await unacked();
    maxBuffered = Math.max(maxBuffered, stalledSocket());

    // Once it reads again, the held-back batch is recorded as sent and goes to the good consumer.
    const resumedAt = Date.now();
    stalled.socket.resume();
    for (const deadline = Date.now() + 15_000; (await unacked()) > 0; await sleep(100)) {
      if (Date.now() > deadline) throw new Error(`still unacked after the resume: ${await unacked()}`);
    }
    const heldBackAckedAfterResumeMs = Date.now() - resumedAt;
    recordFigures(kind === "mysql" ? "consumers-stalled" : `consumers-stalled-${kind}`, {
      messages: enqueued,
      payloadBytes: PAYLOAD_BYTES,
      toGood: good.received.length,
      toStalled: stalled.received.length,
      maxServerBufferedBytes: maxBuffered,
      maxLeased,
      othersAckedAfterLoadMs: othersAckedAfterMs,
      heldBackWhileStalled: heldBack,
      heldBackAckedAfterResumeMs,
    });

    expect(maxBuffered, "the stalled socket really filled up").toBeGreaterThan(0);
    expect(maxBuffered).toBeLessThanOrEqual(OPTIONS.batchSize * (PAYLOAD_BYTES + 200));
    expect(heldBack).toBeLessThanOrEqual(OPTIONS.batchSize);
    expect(maxLeased).toBeLessThanOrEqual(50 + 1_000);
    good.close();
    stalled.close();
    await waitUntil(
      () => server.engine.snapshot(table)!.receivers === 0 && server.engine.snapshot(table)!.held === 0,
      "no receivers, nothing held",
      5_000,
    );
  }, 60_000);

  it("redelivers every unacked message within ack wait + backoff, even one whose write to a stalled socket waits", async () => {
    const table = uniqueTableName("stalled");
    const options = { ackWaitMs: 1_000, minBackoffMs: 500, maxBackoffMs: 1_000, pollIntervalMs: 200 };
    expect((await request(server.url, "PUT", `/v1/tables/${table}`, options)).status).toBe(201);
    const good = await new Consumer(server.url, table, "good", { maxInFlight: 50 }).ready();
    const stalled = await new Consumer(server.url, table, "stalled", { maxInFlight: 1_000, mode: "none" }).ready();
    stalled.socket.pause(); // stops reading; stays connected
    const filler = "x".repeat(64 * 1024);
    for (let i = 0; i < 20; i++) {
      const res = await request(server.url, "POST", `/v1/tables/${table}/messages`, {
        messages: Array.from({ length: 10 }, () => ({ payload: filler })),
      });
      expect(res.status).toBe(201);
      await sleep(20);
    }
    // Ack wait + largest backoff + a generous margin.
    await sleep(options.ackWaitMs + options.maxBackoffMs + 5_000);
    const rows = await store.rows(table);
    const unacked = [...rows.values()].filter((r) => !r.acked).length;
    // The server gives up a send to the stalled socket after the ack wait, so its batch goes to the good one.
    expect(unacked, JSON.stringify(server.engine.snapshot(table))).toBe(0);
    stalled.terminate();
    good.close();
  }, 30_000);
});
