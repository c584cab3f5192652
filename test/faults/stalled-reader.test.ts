/**
 * Reproducer (kept out of the suite): a batch whose write to a subscriber that stopped reading is waiting
 * (socket buffers full) is never redelivered to the other subscribers while that subscriber stays
 * connected: it waits far beyond ack wait + backoff (until the ping check drops the peer, 2 x 30 s).
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/server.js";
import { createMysqlStore, type MysqlStore } from "../../src/store/mysql/store.js";
import { describeWithDatabase, uniqueTableName, useOwnDatabase } from "../support/database.js";
import { startTestServer } from "../support/server.js";
import { sleep } from "../support/wait.js";
import { Consumer, request, tableRows } from "./support.js";

describeWithDatabase("a subscriber that stops reading its socket", () => {
  const database = useOwnDatabase("faults_stalled");
  let server: RunningServer;
  let store: MysqlStore;
  beforeAll(async () => {
    server = await startTestServer(database.url);
    store = createMysqlStore(database.url, { connectionLimit: 2 });
  });
  afterAll(async () => {
    await server?.close();
    await store?.close();
  });

  it("redelivers every unacked message within ack wait + backoff, even one whose write to a stalled socket waits", async () => {
    const table = uniqueTableName("stalled");
    const options = { ackWaitMs: 1_000, minBackoffMs: 500, maxBackoffMs: 1_000, pollIntervalMs: 200 };
    expect((await request(server.url, "PUT", `/v1/tables/${table}`, options)).status).toBe(201);
    const good = await new Consumer(server.url, table, "good", { maxInFlight: 50 }).ready();
    const stalled = await new Consumer(server.url, table, "stalled", { maxInFlight: 1_000, mode: "none" }).ready();
    stalled.socket.pause(); // stops reading; stays connected
    const filler = "x".repeat(64 * 1024);
    for (let i = 0; i < 20; i++) {
      const res = await request(server.url, "POST", `/v1/tables/${table}/messages`, { messages: Array.from({ length: 10 }, () => ({ payload: filler })) });
      expect(res.status).toBe(201);
      await sleep(20);
    }
    // Ack wait + largest backoff + a generous margin.
    await sleep(options.ackWaitMs + options.maxBackoffMs + 5_000);
    const rows = await tableRows(store.db, table);
    const unacked = [...rows.values()].filter((r) => !r.acked).length;
    console.log(JSON.stringify({ unacked, snapshot: server.engine.snapshot(table), toGood: good.received.length }));
    expect(unacked).toBe(0); // fails: 10 (one batch) stay unacked while the stalled subscriber is connected
    stalled.terminate();
    good.close();
  }, 30_000);
});
