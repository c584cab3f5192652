/**
 * Issue 31's second bug: a half-open connection was never detected. Behind a proxy that silently drops
 * traffic, the server removed the subscriber, but the client's `connected` stayed true and it never
 * reconnected, so a message published meanwhile stayed ready. Now the client drops a socket that carried
 * nothing (no ping, no frame) for twice the ping interval the server announces, and reconnects. Real server,
 * real sockets, through a TCP proxy.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { TablemqClient } from "../../src/client/client.js";
import type { RunningServer } from "../../src/server/server.js";
import { describeWithDatabase, uniqueTableName, useOwnDatabase } from "../support/database.js";
import { startTestServer } from "../support/server.js";
import { TcpProxy } from "../support/tcp-proxy.js";
import { waitUntil } from "../support/wait.js";

const PING_MS = 200;

describeWithDatabase("client liveness", () => {
  const database = useOwnDatabase("client_liveness");
  let server: RunningServer;
  let proxy: TcpProxy;

  beforeAll(async () => {
    server = await startTestServer(database.url, { pingIntervalMs: PING_MS });
    proxy = await TcpProxy.start("127.0.0.1", Number(new URL(server.url).port));
  });
  afterAll(async () => {
    await proxy?.close();
    await server?.close();
  });

  it("reconnects a subscription whose path went silent, and gets the message published meanwhile", async () => {
    const table = uniqueTableName("live");
    const direct = new TablemqClient({ url: server.url });
    await direct.createTable(table, {});
    const viaProxy = new TablemqClient({ url: `http://127.0.0.1:${proxy.port}` });
    // Longer than the server takes to drop the silent subscriber (it pings every 200 ms), so the server is
    // seen to drop it first; without the option the client waits twice the announced ping interval.
    const sub = viaProxy.subscribe(table, { heartbeatTimeoutMs: 1_000 });
    let reconnects = 0;
    sub.on("reconnecting", () => reconnects++);
    const got: string[] = [];
    const reading = (async () => {
      for await (const m of sub) {
        got.push(m.id);
        m.ack();
      }
    })();
    await waitUntil(() => sub.connected, "subscribed");
    expect(sub.subscribedInfo?.pingIntervalMs).toBe(PING_MS);
    proxy.stall(); // the open connection goes silent both ways; a new one would get through
    const stalledAt = Date.now();
    // The server drops the silent subscriber (it missed a pong); the client still thinks it is connected.
    await waitUntil(() => server.engine.snapshot(table)?.receivers === 0, "the server to drop the silent subscriber", 5_000);
    const { ids } = await direct.publish(table, { payload: "meanwhile" });
    await waitUntil(() => reconnects > 0, "the client to give up the silent socket", 3_000);
    expect(Date.now() - stalledAt).toBeGreaterThanOrEqual(900);
    await waitUntil(() => got.includes(ids[0]!), "the message published meanwhile", 5_000);
    await sub.close();
    await reading;
  });
});
