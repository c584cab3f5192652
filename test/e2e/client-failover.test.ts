/**
 * The client given two nodes on one database (issue 25), each a real server process: the node its
 * subscription is on is killed with SIGKILL; the subscription resumes on the other node, the client's
 * enqueues go on there, and every message enqueued with a 2xx arrives. Until the nodes claim rows before
 * sending, both may deliver a message, so arrival is counted at least once, never exactly once.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { TablemqClient } from "../../src/client/client.js";
import type { Subscription } from "../../src/client/subscription.js";
import { spawnServer, type ServerProcess } from "../support/child.js";
import { describeWithDatabase, uniqueTableName, useOwnDatabase } from "../support/database.js";
import { sleep, waitUntil } from "../support/wait.js";

const TABLE_OPTIONS = { ackWaitMs: 1_000, minBackoffMs: 500, maxBackoffMs: 1_000, pollIntervalMs: 200 };

describeWithDatabase("client failover between two nodes on one database", () => {
  const database = useOwnDatabase("client_failover");
  const nodes: ServerProcess[] = [];
  let sub: Subscription | undefined;

  beforeAll(async () => {
    const env = { TABLEMQ_DATABASE_URL: database.url, TABLEMQ_DB_POOL_SIZE: "4" };
    nodes.push(...(await Promise.all([spawnServer(env), spawnServer(env)])));
  });
  afterAll(async () => {
    await sub?.close({ release: false });
    for (const n of nodes) if (n.child.exitCode === null && n.child.signalCode === null) n.child.kill("SIGKILL");
    await Promise.all(nodes.map((n) => n.exited));
  });

  it("resumes a subscription on the other node after its node is killed, enqueues go on, and nothing is lost", async () => {
    const client = new TablemqClient({ url: nodes.map((n) => n.url), timeoutMs: 5_000 });
    const table = uniqueTableName("failover");
    expect((await client.createTable(table, TABLE_OPTIONS)).created).toBe(true);

    const received = new Set<string>();
    const enqueued: string[] = [];
    const publish = async (n: number, tag: string) => {
      const messages = Array.from({ length: n }, (_, i) => ({ payload: { tag, i } }));
      enqueued.push(...(await client.publish(table, messages)).ids); // no retry: each must succeed as it is
    };
    const reconnects: string[] = [];
    sub = client.subscribe(table, {
      reconnect: { minDelayMs: 50, maxDelayMs: 500 },
      onMessage: (msg) => void received.add(msg.id),
      onError: () => {}, // the kill's drop is reported through "reconnecting"
    });
    sub.on("reconnecting", (info) => reconnects.push(info.url));
    await waitUntil(() => sub!.connected, "subscribed");

    // The subscription starts where the client's requests go: killing that node kills both paths.
    const victim = nodes.find((n) => n.url === sub!.url)!;
    const survivor = nodes.find((n) => n !== victim)!;
    expect(client.url).toBe(victim.url);
    await publish(20, "before");
    await waitUntil(() => enqueued.every((id) => received.has(id)), "the first 20 messages", 5_000);

    victim.child.kill("SIGKILL");
    expect(await victim.exited).toBe("SIGKILL");
    await sleep(50); // the client's kept-alive sockets to the dead node see their end
    const killedAt = Date.now();

    // Enqueues through the client while the first node is dead: refused there, sent to the other at once.
    for (let i = 0; i < 5; i++) await publish(10, `dead-${i}`);
    expect(client.url).toBe(survivor.url);
    // A client that lists the dead node too (first, in one of two starts) gets through on the first try.
    for (let i = 0; i < 4; i++) {
      const other = new TablemqClient({ url: [victim.url, survivor.url], timeoutMs: 5_000 });
      enqueued.push(...(await other.publish(table, { payload: { tag: "other", i } })).ids);
      expect(other.url).toBe(survivor.url);
    }

    await waitUntil(() => sub!.connected && sub!.url === survivor.url, "the subscription on the surviving node", 5_000);
    const resumedMs = Date.now() - killedAt;
    expect(reconnects[0]).toBe(survivor.url);
    await publish(20, "after");
    // Everything arrives at least once: the messages acked on the dead node's socket whose acks were lost
    // come again after the ack wait, from the surviving node.
    await waitUntil(() => enqueued.every((id) => received.has(id)), `all ${enqueued.length} messages`, 10_000);
    expect(enqueued).toHaveLength(20 + 50 + 4 + 20);
    expect(resumedMs).toBeLessThan(5_000);
  }, 30_000);
});
