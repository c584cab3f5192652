/**
 * The subscription against a fake WebSocket server (no database): framing, ack batching, callback mode,
 * reconnects and permanent failures.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TablemqClient } from "../../../src/client/client.js";
import { TablemqError } from "../../../src/client/http.js";
import type { Message, Subscription } from "../../../src/client/subscription.js";
import { FakeServer, takeMessages } from "../../support/fake-subscribe-server.js";
import { waitUntil } from "../../support/wait.js";

describe("Subscription (fake server)", () => {
  let server: FakeServer;
  let client: TablemqClient;
  const httpCalls: Array<{ url: string; body: unknown }> = [];
  const subs: Subscription[] = [];

  beforeEach(async () => {
    server = new FakeServer();
    await server.listen();
    httpCalls.length = 0;
    const fakeFetch = (async (url: string | URL | Request, init?: RequestInit) => {
      httpCalls.push({ url: String(url), body: JSON.parse(String(init?.body)) });
      return new Response(JSON.stringify({ acked: 1, postponed: 1 }), { status: 200 });
    }) as typeof fetch;
    client = new TablemqClient({ url: `http://127.0.0.1:${server.port}`, token: "tok", fetch: fakeFetch });
  });

  afterEach(async () => {
    for (const s of subs.splice(0)) await s.close();
    await server.close();
  });

  function subscribe(options: Parameters<TablemqClient["subscribe"]>[1] = {}, table = "t"): Subscription {
    const sub = client.subscribe(table, { reconnect: { minDelayMs: 20, maxDelayMs: 100 }, ...options });
    subs.push(sub);
    return sub;
  }

  const take = (it: AsyncIterator<Message>, n: number): Promise<Message[]> => takeMessages(it, n);

  it("connects with maxInFlight and the bearer token, and yields messages with parsed payloads", async () => {
    const sub = subscribe({ maxInFlight: 5 });
    const it = sub[Symbol.asyncIterator]();
    await waitUntil(() => sub.connected, "subscribed");
    expect(server.last.request.url).toBe("/v1/tables/t/subscribe?maxInFlight=5");
    expect(server.last.request.headers.authorization).toBe("Bearer tok");
    expect(sub.subscribedInfo).toEqual({ table: "t", batchSize: 10, ackWaitMs: 1000, maxInFlight: 5 });
    server.push(server.last, "1", "2");
    const got = await take(it, 2);
    expect(got.map((m) => m.toJSON())).toEqual([
      { id: "1", priority: 50, epoch: 0, receipt: "1:0", payload: { n: 1 } },
      { id: "2", priority: 50, epoch: 0, receipt: "2:0", payload: { n: 2 } },
    ]);
  });

  it("sends the acks and postpones of one tick as one frame each", async () => {
    const sub = subscribe();
    const it = sub[Symbol.asyncIterator]();
    await waitUntil(() => sub.connected, "subscribed");
    server.push(server.last, "1", "2", "3", "4");
    const [a, b, c, d] = await take(it, 4);
    a!.ack();
    b!.ack();
    b!.postpone(); // already settled: ignored
    c!.postpone(500);
    d!.postpone(500);
    await sub.flush();
    await waitUntil(() => server.last.frames.length === 2, "two frames");
    expect(server.last.frames).toEqual([
      { type: "ack", ids: ["1", "2"] },
      { type: "postpone", ids: ["3", "4"], delayMs: 500 },
    ]);
    expect(() => a!.postpone(-1)).toThrow(TablemqError);
  });

  it("callback mode: acks after the handler resolves, postpones when it throws", async () => {
    const errors: Array<{ message: string; messageId?: string }> = [];
    const sub = subscribe({
      onMessage: async (msg) => {
        if (msg.id === "2") throw new Error("boom");
      },
    });
    sub.on("error", (err, ctx) => errors.push({ message: err.message, ...(ctx.messageId ? { messageId: ctx.messageId } : {}) }));
    expect(() => sub[Symbol.asyncIterator]()).toThrow(/onMessage/);
    await waitUntil(() => sub.connected, "subscribed");
    server.push(server.last, "1", "2", "3");
    await waitUntil(() => server.last.frames.length >= 2, "ack and postpone frames");
    const acked = server.last.frames.filter((f) => f.type === "ack").flatMap((f) => f.ids as string[]);
    const postponed = server.last.frames.filter((f) => f.type === "postpone");
    expect(acked.sort()).toEqual(["1", "3"]);
    expect(postponed).toEqual([{ type: "postpone", ids: ["2"] }]);
    expect(errors).toEqual([{ message: "boom", messageId: "2" }]);
  });

  it("callback mode runs one handler at a time by default, in order", async () => {
    const log: string[] = [];
    const sub = subscribe({
      onMessage: async (msg) => {
        log.push(`start ${msg.id}`);
        await new Promise((r) => setTimeout(r, 10));
        log.push(`end ${msg.id}`);
      },
    });
    await waitUntil(() => sub.connected, "subscribed");
    server.push(server.last, "1", "2");
    await waitUntil(() => log.length === 4, "both handled");
    expect(log).toEqual(["start 1", "end 1", "start 2", "end 2"]);
  });

  it("reconnects after an unexpected close, keeps receiving, and sends acks queued while down", async () => {
    const sub = subscribe();
    const reconnecting: number[] = [];
    sub.on("reconnecting", (info) => reconnecting.push(info.attempt));
    const it = sub[Symbol.asyncIterator]();
    await waitUntil(() => sub.connected, "subscribed");
    const first = server.last;
    server.push(first, "1");
    const [m1] = await take(it, 1);
    first.socket.close(1001, "server shutting down");
    await waitUntil(() => !sub.connected, "disconnected");
    m1!.ack(); // queued until the next connection
    await waitUntil(() => server.peers.length === 2 && sub.connected, "reconnected", 3_000);
    expect(reconnecting).toEqual([1]);
    await waitUntil(() => server.last.frames.length === 1, "the queued ack");
    expect(server.last.frames[0]).toEqual({ type: "ack", ids: ["1"] });
    server.push(server.last, "2");
    expect((await take(it, 1))[0]!.id).toBe("2");
  });

  it("drops buffered messages of a dead connection (the server redelivers them)", async () => {
    const sub = subscribe();
    const it = sub[Symbol.asyncIterator]();
    await waitUntil(() => sub.connected, "subscribed");
    server.push(server.last, "1", "2");
    await new Promise((r) => setTimeout(r, 50)); // buffered, not taken
    server.last.socket.terminate();
    await waitUntil(() => server.peers.length === 2 && sub.connected, "reconnected", 3_000);
    server.push(server.last, "3");
    expect((await take(it, 1))[0]!.id).toBe("3");
  });

  it("keeps retrying with backoff while the server is down, then reconnects on the same port", async () => {
    const sub = subscribe();
    const attempts: number[] = [];
    sub.on("reconnecting", (info) => attempts.push(info.attempt));
    await waitUntil(() => sub.connected, "subscribed");
    const port = server.port;
    await server.close();
    await waitUntil(() => attempts.length >= 3, "several attempts", 3_000);
    expect(attempts.slice(0, 3)).toEqual([1, 2, 3]);
    server = new FakeServer();
    await server.listen(port);
    await waitUntil(() => sub.connected, "reconnected", 3_000);
  });

  it("does not reset the backoff for a server that accepts and drops at once", async () => {
    server.dropOnConnect = true;
    const sub = subscribe();
    const attempts: number[] = [];
    sub.on("reconnecting", (info) => attempts.push(info.attempt));
    await waitUntil(() => attempts.length >= 3, "three drops", 3_000);
    expect(attempts.slice(0, 3)).toEqual([1, 2, 3]);
  });

  it("waits at least the retry-after of a refused upgrade (capped by maxDelayMs)", async () => {
    server.refuseWithRetryAfter = "1";
    const sub = subscribe({ reconnect: { minDelayMs: 20, maxDelayMs: 5_000 } });
    const delays: number[] = [];
    sub.on("reconnecting", (info) => {
      delays.push(info.delayMs);
      expect(info.error).toMatchObject({ status: 503, code: "unavailable", retryAfterMs: 1000 });
    });
    await waitUntil(() => delays.length >= 1, "a refusal", 3_000);
    expect(delays[0]).toBeGreaterThanOrEqual(1000);
    expect(sub.closed).toBe(false);
  });

  it("fails for good on a 404 upgrade: error event, iterator rejects with the API code, no retry", async () => {
    const sub = subscribe({}, "missing");
    const events: string[] = [];
    sub.on("error", (err, { fatal }) => events.push(`${fatal ? "fatal" : "error"} ${(err as { code?: string }).code}`));
    sub.on("close", ({ error }) => events.push(`close ${error?.code}`));
    const it = sub[Symbol.asyncIterator]();
    await expect(it.next()).rejects.toMatchObject({ status: 404, code: "table_not_found" });
    expect(await it.next()).toEqual({ done: true, value: undefined });
    await expect(sub.done()).rejects.toMatchObject({ code: "table_not_found" });
    expect(events).toEqual(["fatal table_not_found", "close table_not_found"]);
    await new Promise((r) => setTimeout(r, 100));
    expect(server.upgrades).toBe(1);
  });

  it("fails for good on close code 1008", async () => {
    const sub = subscribe();
    const it = sub[Symbol.asyncIterator]();
    await waitUntil(() => sub.connected, "subscribed");
    server.last.socket.close(1008, "too many bad frames");
    await expect(it.next()).rejects.toMatchObject({ code: "policy_violation", message: "too many bad frames" });
    await new Promise((r) => setTimeout(r, 100));
    expect(server.peers).toHaveLength(1);
  });

  it("with reconnect false, an unexpected close ends the subscription with an error", async () => {
    const sub = subscribe({ reconnect: false });
    const it = sub[Symbol.asyncIterator]();
    await waitUntil(() => sub.connected, "subscribed");
    server.last.socket.close(1001, "server shutting down");
    await expect(it.next()).rejects.toMatchObject({ code: "unavailable" });
    expect(sub.closed).toBe(true);
  });

  it("close() ends the iterator, releases unconsumed messages at once, and closes with 1000", async () => {
    const sub = subscribe();
    const it = sub[Symbol.asyncIterator]();
    await waitUntil(() => sub.connected, "subscribed");
    const peer = server.last;
    let closeCode = 0;
    peer.socket.on("close", (code) => (closeCode = code));
    server.push(peer, "1", "2", "3");
    const [m1] = await take(it, 1);
    m1!.ack();
    const pending = it.next(); // gets "2"
    await pending;
    const closed = sub.close();
    expect(await it.next()).toEqual({ done: true, value: undefined });
    await closed;
    await waitUntil(() => closeCode === 1000, "close frame");
    // Nothing more is sent to it (pause), then what it never handed out goes back by receipt, uncounted.
    expect(peer.frames).toEqual([
      { type: "ack", ids: ["1"] },
      { type: "pause", ref: 1 },
      { type: "release", receipts: ["3:0"], ref: 2 },
    ]);
    expect(sub.closed).toBe(true);
    await expect(sub.done()).resolves.toBeUndefined();
  });

  it("breaking out of for-await closes the subscription", async () => {
    const sub = subscribe();
    await waitUntil(() => sub.connected, "subscribed");
    server.push(server.last, "1");
    for await (const msg of sub) {
      msg.ack();
      break;
    }
    expect(sub.closed).toBe(true);
    expect(server.last.frames).toEqual([
      { type: "ack", ids: ["1"] },
      { type: "pause", ref: 1 },
    ]);
  });

  it("after the subscription ended, ack and postpone go over HTTP", async () => {
    const sub = subscribe();
    const it = sub[Symbol.asyncIterator]();
    await waitUntil(() => sub.connected, "subscribed");
    server.push(server.last, "1", "2");
    const [m1, m2] = await take(it, 2);
    await sub.close();
    m1!.ack();
    m2!.postpone(250);
    await waitUntil(() => httpCalls.length === 2, "two HTTP calls");
    expect(httpCalls).toEqual([
      { url: `http://127.0.0.1:${server.port}/v1/tables/t/ack`, body: { ids: ["1"] } },
      { url: `http://127.0.0.1:${server.port}/v1/tables/t/postpone`, body: { ids: ["2"], delayMs: 250 } },
    ]);
  });

  it("reports an error frame as a non-fatal error event", async () => {
    const sub = subscribe();
    const errors: string[] = [];
    sub.on("error", (err, { fatal }) => errors.push(`${fatal} ${(err as { code?: string }).code}: ${err.message}`));
    await waitUntil(() => sub.connected, "subscribed");
    server.last.socket.send(JSON.stringify({ type: "error", code: "bad_request", message: "ids[0]: must be a decimal id string" }));
    await waitUntil(() => errors.length === 1, "the error event");
    expect(errors).toEqual(["false bad_request: ids[0]: must be a decimal id string"]);
    expect(sub.connected).toBe(true);
  });
});
