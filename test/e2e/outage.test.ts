import { afterAll, beforeAll, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/server.js";
import { describeWithDatabase, uniqueTableName, useOwnDatabase } from "../support/database.js";
import { http, startTestServer, TestSubscriber } from "../support/server.js";
import { TcpProxy } from "../support/tcp-proxy.js";
import { waitUntil } from "../support/wait.js";

describeWithDatabase("database outage", () => {
  const database = useOwnDatabase("outage_e2e");
  let proxy: TcpProxy;
  let server: RunningServer;

  beforeAll(async () => {
    const target = new URL(database.url);
    proxy = await TcpProxy.start(target.hostname, Number(target.port || 3306));
    const viaProxy = new URL(database.url);
    viaProxy.port = String(proxy.port);
    server = await startTestServer(viaProxy.toString(), { dbPoolSize: 4 });
  });
  afterAll(async () => {
    await server?.close();
    await proxy?.close();
  });

  it("answers 503 from enqueue and /readyz while the database is cut off, writes nothing, and recovers", async () => {
    const table = uniqueTableName("outage");
    expect((await http(server.url, "PUT", `/v1/tables/${table}`, { ackWaitMs: 1000, pollIntervalMs: 200 })).status).toBe(201);
    const sub = new TestSubscriber(server.url, table, "", { autoAck: true });
    await sub.opened;
    const before = await http(server.url, "POST", `/v1/tables/${table}/messages`, { messages: [{ payload: "before" }] });
    expect(before.status).toBe(201);
    await sub.waitForMessages(1);

    proxy.cut();
    const during = await http(server.url, "POST", `/v1/tables/${table}/messages`, { messages: [{ id: "777", payload: "during" }] });
    expect(during.status).toBe(503);
    expect(during.body.error.code).toBe("unavailable");
    const ready = await http(server.url, "GET", "/readyz");
    expect(ready.status).toBe(503);
    expect(ready.body.error.message).toMatch(/database/);
    expect((await http(server.url, "GET", "/healthz")).status).toBe(200);

    proxy.restore();
    await waitUntil(async () => (await http(server.url, "GET", "/readyz")).status === 200, "readyz to recover", 5_000);
    const after = await http(server.url, "POST", `/v1/tables/${table}/messages`, { messages: [{ payload: "after" }] });
    expect(after.status).toBe(201);
    await sub.waitForMessages(2, 5_000);
    expect(sub.messages.map((m) => m.payload)).toEqual(["before", "after"]);
    // Nothing was written by the refused request: its id is unknown to the table.
    expect((await http(server.url, "POST", `/v1/tables/${table}/ack`, { ids: ["777"] })).body).toEqual({ acked: 0 });
    sub.close();
  });

  it("reports a hung database as not ready within the ping timeout", async () => {
    proxy.hang();
    try {
      const started = Date.now();
      const ready = await http(server.url, "GET", "/readyz");
      expect(ready.status).toBe(503);
      expect(Date.now() - started).toBeLessThan(4_000);
    } finally {
      proxy.restore();
    }
    await waitUntil(async () => (await http(server.url, "GET", "/readyz")).status === 200, "readyz to recover", 5_000);
  });
});
