import WebSocket from "ws";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { RunningServer } from "../../src/server/server.js";
import { describeWithDatabase, uniqueTableName, useOwnDatabase } from "../support/database.js";
import { http, startTestServer } from "../support/server.js";
import { waitUntil } from "../support/wait.js";

describeWithDatabase("WebSocket heartbeat", () => {
  const database = useOwnDatabase("heartbeat_e2e");
  let server: RunningServer;

  beforeAll(async () => {
    server = await startTestServer(database.url, { pingIntervalMs: 150 });
  });
  afterAll(async () => server?.close());

  it("drops a subscriber that stops answering pings, and keeps one that answers", async () => {
    const table = uniqueTableName("hb");
    expect((await http(server.url, "PUT", `/v1/tables/${table}`, {})).status).toBe(201);
    const url = `${server.url.replace(/^http/, "ws")}/v1/tables/${table}/subscribe`;
    const dead = new WebSocket(url, { autoPong: false }); // a peer that vanished without closing
    const alive = new WebSocket(url);
    let deadClosed = false;
    let aliveClosed = false;
    dead.on("close", () => (deadClosed = true));
    alive.on("close", () => (aliveClosed = true));
    await Promise.all([dead, alive].map((ws) => new Promise((r) => ws.once("open", r))));
    await waitUntil(() => (server.engine.snapshot(table)?.receivers ?? 0) === 2, "two receivers");
    await waitUntil(() => deadClosed, "the silent peer to be dropped", 3_000);
    await waitUntil(() => server.engine.snapshot(table)?.receivers === 1, "its receiver to be removed");
    expect(aliveClosed).toBe(false);
    alive.close();
  });
});
