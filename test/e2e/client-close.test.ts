/**
 * Issue 31's first bug: closing a subscription must not deliver again what it hands back. Before, each
 * message released on close returned credit, the server sent it straight back on the still-open socket and
 * the client postponed it again: every round counted a delivery, and with maxAttempts messages nobody
 * processed were dead-lettered. Now close() pauses the server's sending first, then releases (due at once,
 * the delivery uncounted). A real server and MariaDB, real sockets.
 */
import { expect, it } from "vitest";
import { TablemqClient } from "../../src/client/client.js";
import { describeWithDatabase, uniqueTableName } from "../support/database.js";
import { http, useServerDatabase, useTestServer } from "../support/server.js";
import { waitUntil } from "../support/wait.js";

describeWithDatabase("client close", () => {
  const t = useTestServer("client_close");
  const conn = useServerDatabase(t);

  it("closing a subscription that holds 30 unprocessed messages leaves no dead letter and all 30 due at once", async () => {
    const table = uniqueTableName("close");
    const client = new TablemqClient({ url: t.base });
    await client.createTable(table, { ackWaitMs: 1_000, minBackoffMs: 1_000, maxAttempts: 1 });
    const ids = (
      await client.publish(
        table,
        Array.from({ length: 30 }, (_, i) => ({ payload: i })),
      )
    ).ids;
    const sub = client.subscribe(table, { maxInFlight: 30 });
    // Delivered to it (buffered, none handled): all 30 in flight.
    await waitUntil(async () => (await client.describeTable(table)).stats.inFlight === 30, "30 messages delivered to the subscription");
    const closedAt = Date.now();
    await sub.close();
    const stats = (await client.describeTable(table)).stats;
    expect(stats).toMatchObject({ ready: 30, inFlight: 0, dead: 0 });
    const [rows] = await conn.pool.query(`SELECT id, epoch, time_next FROM ${table} ORDER BY id`);
    const list = rows as Array<{ id: string; epoch: number; time_next: string | number }>;
    expect(list.map((r) => String(r.id)).sort()).toEqual([...ids].sort());
    for (const r of list) {
      expect(Number(r.epoch), r.id).toBe(0); // the delivery nobody processed does not count
      expect(Number(BigInt(r.time_next) / 1_000_000n)).toBeLessThanOrEqual(Date.now()); // due now
      expect(Number(BigInt(r.time_next) / 1_000_000n)).toBeGreaterThanOrEqual(closedAt - 5);
    }
    // A new subscriber gets all 30 at once, as first deliveries.
    const next = client.subscribe(table);
    const got: Array<{ id: string; epoch: number }> = [];
    for await (const m of next) {
      got.push({ id: m.id, epoch: m.epoch });
      m.ack();
      if (got.length === 30) break;
    }
    expect(got.every((m) => m.epoch === 0)).toBe(true);
    expect((await http(t.base, "GET", `/v1/tables/${table}/dead`)).body.messages).toEqual([]);
  });
});
