/**
 * Receipts in the client against a fake WebSocket server (no database): msg.extend over the socket and
 * over HTTP, the autoExtend heartbeat, and fenced acks and postpones.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TablemqClient } from "../../../src/client/client.js";
import { TablemqError } from "../../../src/client/http.js";
import { checkAutoExtend, leaseTimes } from "../../../src/client/heartbeat.js";
import type { Message, Subscription } from "../../../src/client/subscription.js";
import type { StaleInfo } from "../../../src/client/types.js";
import { FakeServer, takeMessages } from "../../support/fake-subscribe-server.js";
import { sleep, waitUntil } from "../../support/wait.js";

type Frame = Record<string, unknown>;

describe("receipts in the client (fake server)", () => {
  let server: FakeServer;
  let client: TablemqClient;
  const httpCalls: Array<{ url: string; body: unknown }> = [];
  /** The HTTP answer's body for a request (path after the table, e.g. "/extend"). */
  let httpAnswer: (path: string, body: Frame) => object;
  const subs: Subscription[] = [];
  /** Handlers still blocked: released before the subscriptions close (close waits for handlers). */
  const blocked: Array<() => void> = [];

  beforeEach(async () => {
    server = new FakeServer();
    await server.listen();
    httpCalls.length = 0;
    httpAnswer = () => ({ acked: 1, postponed: 1, extended: 1, stale: [] });
    const fakeFetch = (async (url: string | URL | Request, init?: RequestInit) => {
      const body = JSON.parse(String(init?.body)) as Frame;
      httpCalls.push({ url: String(url), body });
      return new Response(JSON.stringify(httpAnswer(String(url).replace(/^.*\/v1\/tables\/[^/]+/, ""), body)), { status: 200 });
    }) as typeof fetch;
    client = new TablemqClient({ url: `http://127.0.0.1:${server.port}`, fetch: fakeFetch });
  });

  afterEach(async () => {
    for (const release of blocked.splice(0)) release();
    for (const s of subs.splice(0)) await s.close();
    await server.close();
  });

  function subscribe(options: Parameters<TablemqClient["subscribe"]>[1] = {}): Subscription {
    const sub = client.subscribe("t", { reconnect: { minDelayMs: 20, maxDelayMs: 100 }, ...options });
    subs.push(sub);
    return sub;
  }

  const take = (sub: Subscription, n: number): Promise<Message[]> => takeMessages(sub[Symbol.asyncIterator](), n);

  const framesOf = (type: string) => server.peers.flatMap((p) => p.frames).filter((f) => f.type === type);
  const receiptOf = (f: Frame) => (f.receipts as string[])[0];
  const url = (path: string) => `http://127.0.0.1:${server.port}/v1/tables/t${path}`;

  describe("msg.extend", () => {
    it("goes over the socket with a ref and resolves with that message's answer", async () => {
      // 1:0 is current, 2:0 is stale, 3 was acked by someone (neither extended nor stale).
      server.answer = (f) =>
        f.type === "extend"
          ? { type: "extended", ref: f.ref, extended: receiptOf(f) === "1:0" ? 1 : 0, stale: receiptOf(f) === "2:0" ? ["2:0"] : [] }
          : undefined;
      const sub = subscribe();
      await waitUntil(() => sub.connected, "subscribed");
      server.push(server.last, "1", "2", "3");
      const [m1, m2, m3] = await take(sub, 3);
      expect(m1!.receipt).toBe("1:0");
      expect(await Promise.all([m1!.extend(5_000), m2!.extend(5_000), m3!.extend(5_000)])).toEqual([true, false, false]);
      const frames = framesOf("extend");
      expect(frames).toEqual(["1:0", "2:0", "3:0"].map((r) => ({ type: "extend", receipts: [r], byMs: 5_000, ref: expect.any(Number) })));
      expect(new Set(frames.map((f) => f.ref)).size).toBe(3);
      expect(httpCalls).toEqual([]);
    });

    it("resolves false without asking once the message is settled, and rejects a bad byMs", async () => {
      const sub = subscribe();
      await waitUntil(() => sub.connected, "subscribed");
      server.push(server.last, "1", "2");
      const [m1, m2] = await take(sub, 2);
      m1!.ack();
      expect(await m1!.extend(1_000)).toBe(false);
      await expect(m2!.extend(0)).rejects.toMatchObject({ code: "validation_failed", message: expect.stringMatching(/^byMs: /) });
      await expect(m2!.extend(1.5)).rejects.toThrow(TablemqError);
      await sub.flush();
      await sleep(50);
      expect(framesOf("extend")).toEqual([]);
    });

    it("goes over HTTP while the socket is down and after the subscription ended", async () => {
      const sub = subscribe({ reconnect: { minDelayMs: 5_000, maxDelayMs: 5_000 } });
      await waitUntil(() => sub.connected, "subscribed");
      server.push(server.last, "1");
      const [m1] = await take(sub, 1);
      server.last.socket.close(1001, "going away");
      await waitUntil(() => !sub.connected, "disconnected");
      expect(await m1!.extend(700)).toBe(true);
      await sub.close();
      httpAnswer = (_path, body) => ({ extended: 0, stale: body.receipts });
      expect(await m1!.extend(800)).toBe(false);
      expect(httpCalls).toEqual([
        { url: url("/extend"), body: { receipts: ["1:0"], byMs: 700 } },
        { url: url("/extend"), body: { receipts: ["1:0"], byMs: 800 } },
      ]);
      expect(framesOf("extend")).toEqual([]);
    });

    it("is sent again over HTTP when its socket drops before the answer", async () => {
      const sub = subscribe();
      await waitUntil(() => sub.connected, "subscribed");
      server.push(server.last, "1");
      const [m1] = await take(sub, 1);
      const extended = m1!.extend(900);
      await waitUntil(() => framesOf("extend").length === 1, "the extend frame"); // the fake never answers it
      server.last.socket.terminate();
      expect(await extended).toBe(true);
      expect(httpCalls).toEqual([{ url: url("/extend"), body: { receipts: ["1:0"], byMs: 900 } }]);
    });

    it("rejects with the code of an error frame answering it, without an error event", async () => {
      server.answer = (f) =>
        f.type === "extend" ? { type: "error", code: "unavailable", message: "database unreachable", ref: f.ref } : undefined;
      const sub = subscribe();
      const errors: Error[] = [];
      sub.on("error", (err) => errors.push(err));
      await waitUntil(() => sub.connected, "subscribed");
      server.push(server.last, "1");
      const [m1] = await take(sub, 1);
      await expect(m1!.extend(500)).rejects.toMatchObject({ code: "unavailable", message: "database unreachable" });
      expect(errors).toEqual([]);
    });
  });

  describe("autoExtend", () => {
    /** A handler that runs until `finish()` (or the end of the test). */
    function blockingHandler() {
      let finish = () => {};
      const started: string[] = [];
      const onMessage = (msg: Message) => {
        started.push(msg.id);
        return new Promise<void>((resolve) => {
          finish = resolve;
          blocked.push(resolve);
        });
      };
      return { onMessage, started, finish: () => finish() };
    }

    it("extends a running handler's lease every everyMs by byMs, and stops once the handler settled", async () => {
      server.answer = (f) => (f.type === "extend" ? { type: "extended", ref: f.ref, extended: 1, stale: [] } : undefined);
      const handler = blockingHandler();
      const sub = subscribe({ onMessage: handler.onMessage, autoExtend: { everyMs: 60, byMs: 1_000 } });
      await waitUntil(() => sub.connected, "subscribed");
      server.push(server.last, "1");
      await waitUntil(() => framesOf("extend").length >= 3, "three beats", 2_000);
      expect(framesOf("extend").slice(0, 3)).toEqual(
        Array.from({ length: 3 }, () => ({ type: "extend", receipts: ["1:0"], byMs: 1_000, ref: expect.any(Number) })),
      );
      handler.finish();
      await waitUntil(() => framesOf("ack").length === 1, "the ack");
      const beats = framesOf("extend").length;
      await sleep(250); // four periods
      expect(framesOf("extend")).toHaveLength(beats);
      expect(framesOf("ack")).toEqual([{ type: "ack", ids: ["1"] }]);
    });

    it("a stale answer stops the heartbeat and emits stale", async () => {
      server.answer = (f) => (f.type === "extend" ? { type: "extended", ref: f.ref, extended: 0, stale: f.receipts } : undefined);
      const handler = blockingHandler();
      const sub = subscribe({ onMessage: handler.onMessage, autoExtend: { everyMs: 40, byMs: 1_000 } });
      const stale: StaleInfo[] = [];
      sub.on("stale", (info) => stale.push(info));
      await waitUntil(() => sub.connected, "subscribed");
      server.push(server.last, "1");
      await waitUntil(() => stale.length === 1, "the stale event", 2_000);
      expect(stale).toEqual([{ kind: "extend", receipts: ["1:0"] }]);
      await sleep(200); // five periods
      expect(framesOf("extend")).toHaveLength(1);
      handler.finish();
    });

    it("a failed beat is reported with the message id, and the next one is tried", async () => {
      let beats = 0;
      server.answer = (f) => {
        if (f.type !== "extend") return undefined;
        return ++beats === 1
          ? { type: "error", code: "unavailable", message: "database unreachable", ref: f.ref }
          : { type: "extended", ref: f.ref, extended: 1, stale: [] };
      };
      const handler = blockingHandler();
      const sub = subscribe({ onMessage: handler.onMessage, autoExtend: { everyMs: 40, byMs: 1_000 } });
      const errors: Array<{ code?: string; messageId?: string }> = [];
      sub.on("error", (err, ctx) => errors.push({ code: (err as { code?: string }).code, messageId: ctx.messageId }));
      await waitUntil(() => sub.connected, "subscribed");
      server.push(server.last, "1");
      await waitUntil(() => framesOf("extend").length >= 3, "beats after the failed one", 2_000);
      expect(errors).toEqual([{ code: "unavailable", messageId: "1" }]);
      handler.finish();
    });

    it("beats only while a handler runs; a message that waited for a free handler is extended as soon as it starts", async () => {
      const beats: Array<{ receipt: string; at: number }> = [];
      server.answer = (f) => {
        if (f.type !== "extend") return undefined;
        beats.push({ receipt: receiptOf(f)!, at: Date.now() });
        return { type: "extended", ref: f.ref, extended: 1, stale: [] };
      };
      const handler = blockingHandler();
      const startedAt: number[] = [];
      const sub = subscribe({
        onMessage: (msg) => {
          startedAt.push(Date.now());
          return handler.onMessage(msg);
        },
        autoExtend: { everyMs: 300, byMs: 1_000 },
      });
      await waitUntil(() => sub.connected, "subscribed");
      server.push(server.last, "1", "2"); // concurrency 1: 2 waits for 1's handler
      await waitUntil(() => beats.length >= 2, "two beats for 1", 3_000);
      expect(beats.map((b) => b.receipt)).toEqual(["1:0", "1:0"]);
      handler.finish();
      await waitUntil(() => beats.some((b) => b.receipt === "2:0"), "a beat for 2", 3_000);
      // 2 arrived two periods ago: its first beat is overdue, so it comes at once, not a period after the start.
      expect(beats.find((b) => b.receipt === "2:0")!.at - startedAt[1]!).toBeLessThan(150);
      handler.finish();
    });

    it("derives missing times from the table's ack wait, and refuses settings that cannot work", () => {
      expect(leaseTimes({}, 1_000)).toEqual({ everyMs: 500, byMs: 1_000 });
      expect(leaseTimes({ everyMs: 800 }, 1_000)).toEqual({ everyMs: 800, byMs: 1_600 });
      expect(leaseTimes({ byMs: 400 }, 1_000)).toEqual({ everyMs: 200, byMs: 400 });
      expect(checkAutoExtend(true)).toEqual({});
      expect(checkAutoExtend(false)).toBeUndefined();
      expect(() => checkAutoExtend({ everyMs: 500, byMs: 500 })).toThrow(/less than/);
      expect(() => checkAutoExtend({ everyMs: 0 })).toThrow(TablemqError);
      expect(() => client.subscribe("t", { autoExtend: true })).toThrow(/needs onMessage/);
    });
  });

  describe("fenced", () => {
    it("acks and postpones by receipt with a ref, and reports the receipts the server refused", async () => {
      server.answer = (f) => {
        if (f.type === "ack") return { type: "acked", ref: f.ref, acked: 1, stale: ["2:0"] };
        if (f.type === "postpone") return { type: "postponed", ref: f.ref, postponed: 1, stale: [] };
        return undefined;
      };
      const sub = subscribe({ fenced: true });
      const stale: StaleInfo[] = [];
      sub.on("stale", (info) => stale.push(info));
      await waitUntil(() => sub.connected, "subscribed");
      server.push(server.last, "1", "2", "3");
      const [m1, m2, m3] = await take(sub, 3);
      m1!.ack();
      m2!.ack();
      m3!.postpone(500);
      await sub.flush();
      await waitUntil(() => stale.length === 1, "the stale event");
      expect(server.last.frames).toEqual([
        { type: "ack", receipts: ["1:0", "2:0"], ref: expect.any(Number) },
        { type: "postpone", receipts: ["3:0"], delayMs: 500, ref: expect.any(Number) },
      ]);
      expect(stale).toEqual([{ kind: "ack", receipts: ["2:0"] }]);
    });

    it("callback mode acks by receipt; close releases buffered messages by receipt; later acks go over HTTP by receipt", async () => {
      const sub = subscribe({ fenced: true });
      const stale: StaleInfo[] = [];
      sub.on("stale", (info) => stale.push(info));
      await waitUntil(() => sub.connected, "subscribed");
      const peer = server.last;
      server.push(peer, "1", "2", "3");
      const [m1] = await take(sub, 1);
      await sub.close();
      expect(peer.frames).toEqual([
        { type: "pause", ref: expect.any(Number) },
        { type: "release", receipts: ["2:0", "3:0"], ref: expect.any(Number) },
      ]);
      httpAnswer = (_path, body) => ({ acked: 0, stale: body.receipts });
      m1!.ack();
      await waitUntil(() => stale.length === 1, "the stale event");
      expect(httpCalls).toEqual([{ url: url("/ack"), body: { receipts: ["1:0"] } }]);
      expect(stale).toEqual([{ kind: "ack", receipts: ["1:0"] }]);

      const callback = subscribe({ fenced: true, onMessage: () => {} });
      await waitUntil(() => callback.connected, "subscribed");
      server.push(server.last, "4");
      await waitUntil(() => server.last.frames.length === 1, "the ack");
      expect(server.last.frames).toEqual([{ type: "ack", receipts: ["4:0"], ref: expect.any(Number) }]);
    });
  });
});
