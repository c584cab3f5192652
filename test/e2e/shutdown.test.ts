import { Agent, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { connect } from "node:net";
import { sql } from "kysely";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createMysqlStore, type MysqlStore } from "../../src/store/mysql/store.js";
import { spawnServer } from "../support/child.js";
import { describeWithDatabase, uniqueTableName, useOwnDatabase } from "../support/database.js";
import { http, startTestServer, TestSubscriber } from "../support/server.js";
import { lockTable, waitForLockWait } from "../support/table-lock.js";
import { sleep } from "../support/wait.js";

/** One request over a keep-alive agent (node:http, so the test owns the connection). */
function keepAliveRequest(
  agent: Agent,
  url: string,
  method: string,
  body?: unknown,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: any }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, agent, headers: body === undefined ? {} : { "content-type": "application/json" } }, (res) => {
      let text = "";
      res.on("data", (d) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text === "" ? undefined : JSON.parse(text) }));
    });
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** Far longer than any of these shutdowns should take. */
const DEADLINE_MS = 5_000;

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

  it("closes a keep-alive connection that is idle when shutdown begins at once, not at the deadline", async () => {
    const server = await startTestServer(database.url, { shutdownTimeoutMs: DEADLINE_MS });
    const agent = new Agent({ keepAlive: true });
    try {
      const res = await keepAliveRequest(agent, `${server.url}/healthz`, "GET");
      expect(res.headers.connection).toBe("keep-alive"); // the client holds the idle connection open
      const started = Date.now();
      await server.close();
      expect(Date.now() - started).toBeLessThan(1_000);
    } finally {
      agent.destroy();
      await server.close();
    }
  });

  it("closes a connection that has not sent a request yet (as fetch keeps in reserve) at once, not at the deadline", async () => {
    const server = await startTestServer(database.url, { shutdownTimeoutMs: DEADLINE_MS });
    const { port } = new URL(server.url);
    const reserve = connect(Number(port), "127.0.0.1");
    try {
      await new Promise<void>((resolve, reject) => reserve.once("connect", resolve).once("error", reject));
      const closedByServer = new Promise<void>((resolve) => reserve.once("close", () => resolve()));
      reserve.on("error", () => {}); // a reset is how the server may close it
      await sleep(50); // the server has it
      const started = Date.now();
      await server.close();
      expect(Date.now() - started).toBeLessThan(1_000);
      await closedByServer;
    } finally {
      reserve.destroy();
      await server.close();
    }
  });

  it("lets a request in flight at shutdown finish, then closes its keep-alive connection instead of waiting for the deadline", async () => {
    const server = await startTestServer(database.url, { shutdownTimeoutMs: DEADLINE_MS });
    const agent = new Agent({ keepAlive: true });
    const table = uniqueTableName("inflight");
    let closedAfterMs = -1;
    try {
      expect((await keepAliveRequest(agent, `${server.url}/v1/tables/${table}`, "PUT", {})).status).toBe(201);
      // The enqueue waits in the database for the lock while shutdown begins.
      const lock = await lockTable(database.url, table);
      const pending = keepAliveRequest(agent, `${server.url}/v1/tables/${table}/messages`, "POST", {
        messages: [{ id: "42", payload: 1 }],
      });
      await waitForLockWait(store.db, table);
      const started = Date.now();
      const closing = server.close().then(() => (closedAfterMs = Date.now() - started));
      await sleep(200);
      await lock.release();
      const res = await pending;
      expect(res.status).toBe(201); // in flight when shutdown began: it finishes, committed
      expect(res.headers.connection).toBe("close"); // and its connection is not kept for another request
      await closing;
    } finally {
      agent.destroy();
      await server.close();
    }
    expect(closedAfterMs).toBeGreaterThanOrEqual(200);
    expect(closedAfterMs).toBeLessThan(1_500);
    const { rows } = await sql<{ id: string }>`SELECT id FROM ${sql.table(table)}`.execute(store.db);
    expect(rows.map((r) => String(r.id))).toEqual(["42"]);
  });
});
