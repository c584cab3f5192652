import { sql } from "kysely";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createMysqlStore, type MysqlStore } from "../../src/store/mysql/store.js";
import { spawnServer } from "../support/child.js";
import { describeWithDatabase, uniqueTableName, useOwnDatabase } from "../support/database.js";
import { http, TestSubscriber } from "../support/server.js";
import { sleep } from "../support/wait.js";

describeWithDatabase("graceful shutdown", () => {
  const database = useOwnDatabase("shutdown_e2e");
  let store: MysqlStore;

  beforeAll(() => {
    store = createMysqlStore(database.url, { connectionLimit: 2 });
  });
  afterAll(async () => store?.close());

  it("loses no acknowledged enqueue and no acknowledged ack when SIGTERM arrives under load", async () => {
    const server = await spawnServer({ TABLEMQ_DATABASE_URL: database.url });
    const table = uniqueTableName("sigterm");
    expect((await http(server.url, "PUT", `/v1/tables/${table}`, { ackWaitMs: 60_000 })).status).toBe(201);

    const committed = new Set<string>();
    const ackedOk = new Set<string>();
    let refused = 0;
    let stop = false;
    const sub = new TestSubscriber(server.url, table);
    await sub.opened;
    sub.socket.on("message", (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.type !== "messages") return;
      const ids = frame.messages.map((m: { id: string }) => m.id);
      void http(server.url, "POST", `/v1/tables/${table}/ack`, { ids })
        .then((r) => r.status === 200 && ids.forEach((id: string) => ackedOk.add(id)))
        .catch(() => {});
    });

    const producer = async (p: number) => {
      for (let i = 0; !stop && i < 2_000; i++) {
        try {
          const res = await http(server.url, "POST", `/v1/tables/${table}/messages`, {
            messages: Array.from({ length: 10 }, (_, j) => ({ payload: { p, i, j } })),
          });
          if (res.status === 201) for (const id of res.body.ids) committed.add(id);
          else refused++;
        } catch {
          refused++; // connection refused or reset once the server stopped listening
          if (stop) return;
          await sleep(5);
        }
      }
    };
    const producers = Array.from({ length: 4 }, (_, p) => producer(p));
    await sleep(700);
    const before = committed.size;
    server.child.kill("SIGTERM");
    const code = await server.exited;
    stop = true;
    await Promise.all(producers);

    expect(code, server.stderr()).toBe(0);
    expect(before).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0); // the load really ran into the shutdown
    const { rows } = await sql<{ id: string; acked: number }>`
      SELECT id, time_acked IS NOT NULL AS acked FROM ${sql.table(table)}`.execute(store.db);
    const stored = new Map(rows.map((r) => [String(r.id), Number(r.acked) === 1]));
    const lost = [...committed].filter((id) => !stored.has(id));
    expect(lost).toEqual([]);
    const unacked = [...ackedOk].filter((id) => stored.get(id) !== true);
    expect(unacked).toEqual([]);
    expect(ackedOk.size).toBeGreaterThan(0);
    expect(sub.closeCode).toBe(1001);
  }, 30_000);
});
