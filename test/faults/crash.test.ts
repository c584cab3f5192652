/**
 * Crash: the server process is killed with SIGKILL in the middle of a steady load (HTTP producers,
 * WebSocket subscribers acking over the socket), and a new server process is started on the same
 * database. Every message whose enqueue got a 2xx must be delivered and acked in the end; the only
 * duplicates allowed are the messages that were delivered and not yet acknowledged when the process died.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { spawnServer, type ServerProcess } from "../support/child.js";
import { describeEachStore, uniqueTableName, useOwnStoreDatabase } from "../support/database.js";
import { TestSubscriber } from "../support/server.js";
import { sleep, waitUntil } from "../support/wait.js";
import { Consumer, type Delivery, openRowsReader, recordFigures, request, type RowsReader } from "./support.js";

const PRODUCERS = 4;
const BATCH = 10;
const SUBSCRIBERS = 3;
const MAX_IN_FLIGHT = 20;
const TABLE_OPTIONS = { ackWaitMs: 1_000, minBackoffMs: 500, maxBackoffMs: 2_000, pollIntervalMs: 200 };
/** Load before the kill, and after the restart. */
const LOAD_BEFORE_MS = 1_500;
const LOAD_AFTER_MS = 1_000;

describeEachStore("fault: server killed (SIGKILL) under load", (kind) => {
  const database = useOwnStoreDatabase(kind, "faults_crash");
  let store: RowsReader;
  const servers: ServerProcess[] = [];

  beforeAll(() => {
    store = openRowsReader(database.url);
  });
  afterAll(async () => {
    for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill("SIGKILL");
    await Promise.all(servers.map((s) => s.exited));
    await store?.close();
  });

  it("delivers and acks every 2xx-enqueued message after a restart; duplicates only among the unacked at the kill", async () => {
    const env = { TABLEMQ_DATABASE_URL: database.url, TABLEMQ_DB_POOL_SIZE: "6" };
    const first = await spawnServer(env);
    servers.push(first);
    const table = uniqueTableName("crash");
    expect((await request(first.url, "PUT", `/v1/tables/${table}`, TABLE_OPTIONS)).status).toBe(201);

    const log: Delivery[] = [];
    const confirmed = new Set<string>();
    const subscribe = (base: string, generation: string) =>
      Promise.all(
        Array.from({ length: SUBSCRIBERS }, (_, i) =>
          new Consumer(base, table, `${generation}-${i}`, { maxInFlight: MAX_IN_FLIGHT, ackDelayMs: 5, log, confirmed }).ready(),
        ),
      );
    const before = await subscribe(first.url, "before");

    // Producers: batches of BATCH messages, each payload naming itself (producer, request, index).
    let base: string | undefined = first.url;
    let producing = true;
    const committed = new Map<string, string>(); // payload key -> id, for 2xx answers only
    const figures = { requests: 0, accepted: 0, refused: 0, noAnswer: 0 };
    const producer = async (p: number) => {
      for (let i = 0; producing && i < 1_000; i++) {
        const url = base;
        if (!url) {
          await sleep(20);
          continue;
        }
        const messages = Array.from({ length: BATCH }, (_, j) => ({ payload: { k: `${p}-${i}-${j}` } }));
        figures.requests++;
        const res = await request(url, "POST", `/v1/tables/${table}/messages`, { messages }, 5_000);
        if (res.status === 201) {
          figures.accepted++;
          (res.body.ids as string[]).forEach((id, j) => committed.set(`${p}-${i}-${j}`, id));
        } else if (res.status === 0) {
          figures.noAnswer++; // refused, reset or timed out: unknown whether it committed
          await sleep(20);
        } else {
          figures.refused++;
        }
      }
    };
    const producers = Array.from({ length: PRODUCERS }, (_, p) => producer(p));

    await sleep(LOAD_BEFORE_MS);
    const killedAt = Date.now();
    base = undefined;
    first.child.kill("SIGKILL");
    expect(await first.exited).toBe("SIGKILL");
    await Promise.all(before.map((c) => c.closed));
    // In flight at the kill: delivered to the first server's subscribers, with no ack confirmed.
    const deliveredBefore = new Set(log.map((d) => d.id));
    const unconfirmedAtKill = new Set([...deliveredBefore].filter((id) => !confirmed.has(id)));
    const committedAtKill = new Map(committed);
    // Of those, the ones whose ack frame was sent but not answered (it may or may not have committed).
    const ackSentAtKill = new Set(before.flatMap((c) => [...c.pendingAcks.values()].flat()));

    const second = await spawnServer(env);
    servers.push(second);
    const restartMs = Date.now() - killedAt;
    await subscribe(second.url, "after");
    base = second.url;
    await sleep(LOAD_AFTER_MS);
    producing = false;
    await Promise.all(producers);

    // Every message enqueued with a 2xx, before or after the kill, is delivered and acked in the database.
    // (An ack that committed just before the kill has no confirmation frame: the database is the judge.)
    const deliveredIds = new Set<string>();
    const allAcked = async (ids: readonly string[]) => {
      for (const d of log) deliveredIds.add(d.id);
      const rows = await store.rows(table);
      return ids.every((id) => deliveredIds.has(id) && rows.get(id)?.acked === true);
    };
    // An array, not an iterator: each check reads all of them (a spent iterator would pass at once).
    const waitAcked = async (ids: readonly string[], what: string) => {
      for (const deadline = Date.now() + 25_000; !(await allAcked(ids)); await sleep(100)) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      }
    };
    await waitAcked([...committedAtKill.values()], "every 2xx message from before the kill to be delivered and acked");
    const recoveryMs = Date.now() - killedAt;
    await waitAcked([...committed.values()], "every 2xx message to be delivered and acked");
    const firstAfter = log.find((d) => d.by.startsWith("after"));
    const firstDeliveryAfterRestartMs = firstAfter ? firstAfter.at - killedAt : -1;

    const rows = await store.rows(table);
    const lost = [...committed.values()].filter((id) => !rows.has(id) || !deliveredIds.has(id));
    const unacked = [...committed.values()].filter((id) => rows.get(id)?.acked !== true);
    const ackedUnconfirmed = [...unconfirmedAtKill].filter(
      (id) => rows.get(id)?.acked === true && !log.some((d) => d.id === id && d.by.startsWith("after")),
    );

    const deliveries = new Map<string, Delivery[]>();
    for (const d of log) deliveries.set(d.id, [...(deliveries.get(d.id) ?? []), d]);
    const duplicated = [...deliveries].filter(([, ds]) => ds.length > 1);
    const duplicateDeliveries = duplicated.reduce((n, [, ds]) => n + ds.length - 1, 0);
    // A message delivered again after the restart must have been unacknowledged when the process died.
    const redeliveredAcrossKill = duplicated.filter(
      ([, ds]) => ds.some((d) => d.by.startsWith("before")) && ds.some((d) => d.by.startsWith("after")),
    );
    const unexplained = redeliveredAcrossKill.filter(([id]) => !unconfirmedAtKill.has(id)).map(([id]) => id);
    // Keys delivered that never got a 2xx: enqueues in flight at the kill that had committed.
    const committedKeys = new Set(committed.keys());
    const inDoubtDelivered = new Set(log.map((d) => (d.payload as { k: string }).k).filter((k) => !committedKeys.has(k))).size;

    const result = {
      sent: figures.requests * BATCH,
      enqueued2xx: committed.size,
      enqueuedBeforeKill2xx: committedAtKill.size,
      requestsWithoutAnswer: figures.noAnswer,
      requestsRefused: figures.refused,
      inDoubtEnqueuesDelivered: inDoubtDelivered,
      delivered: deliveredIds.size,
      deliveries: log.length,
      acknowledged: [...committed.values()].filter((id) => rows.get(id)?.acked === true).length,
      ackCommittedButUnconfirmedAtKill: ackedUnconfirmed.length,
      lost: lost.length,
      duplicates: duplicated.length,
      duplicateDeliveries,
      duplicatesAcrossKill: redeliveredAcrossKill.length,
      unackedAtKill: unconfirmedAtKill.size,
      ackSentUnansweredAtKill: ackSentAtKill.size,
      inFlightBound: SUBSCRIBERS * MAX_IN_FLIGHT,
      restartMs,
      firstDeliveryAfterRestartMs,
      recoveryMs,
    };
    recordFigures(kind === "mysql" ? "crash" : `crash-${kind}`, result);

    expect(committedAtKill.size, "the load ran before the kill").toBeGreaterThan(0);
    expect(committed.size, "enqueue worked again after the restart").toBeGreaterThan(committedAtKill.size);
    expect(lost).toEqual([]);
    expect(unacked).toEqual([]);
    expect(unexplained).toEqual([]);
    expect(redeliveredAcrossKill.length).toBeLessThanOrEqual(unconfirmedAtKill.size);
    // Without the crash nothing would have come twice: ack waits (1 s) are far longer than ack latency here.
    expect(duplicated.length).toBeLessThanOrEqual(unconfirmedAtKill.size);
    // maxInFlight credit: what the subscribers held without having sent an ack is at most their credit.
    expect([...unconfirmedAtKill].filter((id) => !ackSentAtKill.has(id)).length).toBeLessThanOrEqual(SUBSCRIBERS * MAX_IN_FLIGHT);
    expect(
      before.every((c) => c.closeCode === 1006),
      "the old sockets died with the process",
    ).toBe(true);

    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);
  }, 60_000);

  it("after a SIGKILL, dead-letters (maxAttempts 1) only a message that was sent, not those waiting for credit", async () => {
    const env = { TABLEMQ_DATABASE_URL: database.url, TABLEMQ_DB_POOL_SIZE: "4" };
    const first = await spawnServer(env);
    servers.push(first);
    const table = uniqueTableName("crash_credit");
    const options = { ackWaitMs: 1_000, minBackoffMs: 200, maxBackoffMs: 200, maxAttempts: 1 };
    expect((await request(first.url, "PUT", `/v1/tables/${table}`, options)).status).toBe(201);
    const starved = new TestSubscriber(first.url, table, "?maxInFlight=1"); // takes one, never acks
    await starved.opened;
    const ids: string[] = [];
    for (const payload of [1, 2, 3])
      ids.push(...(await request(first.url, "POST", `/v1/tables/${table}/messages`, { messages: [{ payload }] })).body.ids);
    await starved.waitForMessages(1);
    await sleep(200);
    const sent = starved.ids;
    expect(sent).toHaveLength(1);
    first.child.kill("SIGKILL");
    expect(await first.exited).toBe("SIGKILL");

    const second = await spawnServer(env);
    servers.push(second);
    await sleep(options.ackWaitMs + options.maxBackoffMs); // the sent message's lease has ended
    const after = new TestSubscriber(second.url, table, "", { autoAck: true });
    await after.opened;
    const neverSent = ids.filter((id) => !sent.includes(id));
    await waitUntil(() => neverSent.every((id) => after.ids.includes(id)), "the two messages never sent to be delivered");
    let dead: Array<{ id: string }> = [];
    await waitUntil(async () => {
      dead = (await request(second.url, "GET", `/v1/tables/${table}/dead`)).body.messages;
      return dead.length > 0;
    }, "the sent message to be dead-lettered");
    await sleep(200);
    dead = (await request(second.url, "GET", `/v1/tables/${table}/dead`)).body.messages;
    expect(dead.map((m) => m.id)).toEqual(sent);
    after.close();
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);
  }, 30_000);
});
