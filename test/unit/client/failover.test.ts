/**
 * A client given several servers: HTTP requests over a fake fetch (which server each try went to, what was
 * sent again), subscriptions against fake WebSocket servers (which server each reconnect went to).
 */
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it, vi } from "vitest";
import { TablemqClient } from "../../../src/client/client.js";
import { TablemqError } from "../../../src/client/http.js";
import type { Message, ReconnectingInfo, Subscription } from "../../../src/client/subscription.js";
import { FakeServer, takeMessages } from "../../support/fake-subscribe-server.js";
import { waitUntil } from "../../support/wait.js";

const A = "http://a:1";
const B = "http://b:2";

/** A client over `urls` whose list starts at the first (the start is random otherwise). */
function clientStartingAtFirst(urls: string[], options: { fetch?: typeof fetch; timeoutMs?: number } = {}): TablemqClient {
  const random = vi.spyOn(Math, "random").mockReturnValue(0);
  try {
    return new TablemqClient({ url: urls, ...options });
  } finally {
    random.mockRestore();
  }
}

type Call = { url: string; method: string; body: unknown };

/** A fake fetch: `respond` gets the server's base URL and the call, and answers or throws. */
function fakeFetch(respond: (base: string, call: Call, init: RequestInit) => Response | Promise<Response>) {
  const calls: Call[] = [];
  const fn = (async (url: string | URL | Request, init?: RequestInit) => {
    const text = String(url);
    const call = { url: text, method: init?.method ?? "GET", body: init?.body === undefined ? undefined : JSON.parse(String(init.body)) };
    calls.push(call);
    return respond(new URL(text).origin, call, init ?? {});
  }) as typeof fetch;
  return { fn, calls, servers: () => calls.map((c) => new URL(c.url).origin) };
}

const refused = () => new TypeError("fetch failed", { cause: { code: "ECONNREFUSED" } });
const reset = () => new TypeError("fetch failed", { cause: { code: "ECONNRESET" } });
const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
const enqueued = (call: Call) => {
  const ids = (call.body as { messages: Array<{ id?: string }> }).messages.map((m, i) => m.id ?? String(100 + i));
  return json(201, { ids });
};

describe("HTTP requests over several servers", () => {
  it("sends a request the current server refused to the next at once, and the requests after it there", async () => {
    const f = fakeFetch((base, call) => {
      if (base === A) throw refused();
      return enqueued(call);
    });
    const client = clientStartingAtFirst([A, B], { fetch: f.fn });
    expect(client.url).toBe(A);
    expect(await client.publish("t", { payload: 1 })).toEqual({ ids: ["100"], duplicates: [] });
    expect(f.servers()).toEqual([A, B]);
    expect(client.url).toBe(B);
    await client.publish("t", { payload: 2 });
    expect(f.servers()).toEqual([A, B, B]);
  });

  it("tries each server once when none can be reached: nothing was written, and the error names them all", async () => {
    const f = fakeFetch(() => {
      throw refused();
    });
    const client = clientStartingAtFirst([A, B], { fetch: f.fn });
    const err = await client.publish("t", { payload: 1 }).catch((e: unknown) => e);
    expect(f.servers()).toEqual([A, B]);
    expect(err).toBeInstanceOf(TablemqError);
    expect(err).toMatchObject({ status: 0, code: "unavailable", retryable: true, outcome: "not_written" });
    expect((err as Error).message).toBe(
      "POST /v1/tables/t/messages: cannot reach any of the 2 servers (http://a:1: ECONNREFUSED; http://b:2: ECONNREFUSED)",
    );
    expect(client.url).toBe(A); // round the list and back
  });

  it("does not send again a write whose connection dropped after sending; the next request goes to the next server", async () => {
    const f = fakeFetch((base, call) => {
      if (base === A) throw reset();
      return call.url.endsWith("/ack") ? json(200, { acked: 1 }) : enqueued(call);
    });
    const client = clientStartingAtFirst([A, B], { fetch: f.fn });
    const err = await client.publish("t", { payload: 1 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 0, code: "unavailable", outcome: "unknown" });
    expect((err as Error).message).toBe("POST /v1/tables/t/messages: cannot reach http://a:1 (ECONNRESET)");
    expect(f.servers()).toEqual([A]);
    expect(client.url).toBe(B);
    await client.ack("t", ["1"]);
    expect(f.servers()).toEqual([A, B]);
  });

  it("publish with retry sends a write in doubt again to the next server, under the ids it made before the first try", async () => {
    const f = fakeFetch((base, call) => {
      if (base === A) throw reset();
      return enqueued(call);
    });
    const client = clientStartingAtFirst([A, B], { fetch: f.fn });
    const result = await client.publish("t", [{ payload: 1 }, { payload: 2 }], { retry: { attempts: 2 } });
    expect(f.servers()).toEqual([A, B]);
    const [first, second] = f.calls.map((c) => (c.body as { messages: Array<{ id: string }> }).messages.map((m) => m.id));
    expect(second).toEqual(first);
    expect(result.ids).toEqual(first);
  });

  it("sends a read whose connection dropped to the next server (it changes nothing)", async () => {
    const f = fakeFetch((base) => {
      if (base === A) throw reset();
      return json(200, { tables: [] });
    });
    const client = clientStartingAtFirst([A, B], { fetch: f.fn });
    expect(await client.listTables()).toEqual([]);
    expect(f.servers()).toEqual([A, B]);
  });

  it("does not send again a request that timed out, and sends the next ones to the next server", async () => {
    const f = fakeFetch((base, _call, init) => {
      if (base === B) return json(200, { tables: [] });
      return new Promise<Response>((_, reject) => init.signal!.addEventListener("abort", () => reject(init.signal!.reason)));
    });
    const client = clientStartingAtFirst([A, B], { fetch: f.fn, timeoutMs: 30 });
    const err = await client.listTables().catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 0, code: "timeout", outcome: "unknown" });
    expect((err as Error).message).toBe("GET /v1/tables?limit=1000 timed out after 30 ms at http://a:1");
    expect(f.servers()).toEqual([A]);
    expect(await client.listTables()).toEqual([]);
    expect(f.servers()).toEqual([A, B]);
  });

  it("stays with a server that answered, a 503 too: the caller's retry rules apply as with one server", async () => {
    const f = fakeFetch(() => json(503, { error: { code: "unavailable", message: "the database is unreachable" } }));
    const client = clientStartingAtFirst([A, B], { fetch: f.fn });
    await expect(client.publish("t", { payload: 1 })).rejects.toMatchObject({ status: 503 });
    expect(f.servers()).toEqual([A]);
    expect(client.url).toBe(A);
  });

  it("with one server, a refused request fails as before: one try, the same message", async () => {
    const f = fakeFetch(() => {
      throw refused();
    });
    const err = await new TablemqClient({ url: A, fetch: f.fn }).listTables().catch((e: unknown) => e);
    expect(f.calls).toHaveLength(1);
    expect((err as Error).message).toBe("GET /v1/tables?limit=1000: cannot reach the server (ECONNREFUSED)");
  });
});

/** A port nothing listens on: connections to it are refused. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("subscriptions over several servers", () => {
  const servers: FakeServer[] = [];
  const subs: Subscription[] = [];
  const noHttp = (() => Promise.reject(new Error("no HTTP in this test"))) as typeof fetch;

  afterEach(async () => {
    for (const s of subs.splice(0)) await s.close({ release: false });
    for (const s of servers.splice(0)) await s.close();
  });

  async function fakeServer(port = 0): Promise<FakeServer> {
    const server = new FakeServer();
    await server.listen(port);
    servers.push(server);
    return server;
  }
  const base = (server: FakeServer | number) => `http://127.0.0.1:${typeof server === "number" ? server : server.port}`;

  function subscribe(client: TablemqClient): { sub: Subscription; reconnects: ReconnectingInfo[] } {
    const sub = client.subscribe("t", { reconnect: { minDelayMs: 20, maxDelayMs: 100 } });
    subs.push(sub);
    const reconnects: ReconnectingInfo[] = [];
    sub.on("reconnecting", (info) => reconnects.push(info));
    return { sub, reconnects };
  }

  it("starts on the client's current server, moves to the next when its server dies, and sends the acks queued while down there", async () => {
    const [first, second] = [await fakeServer(), await fakeServer()];
    const client = clientStartingAtFirst([base(first), base(second)], { fetch: noHttp });
    const { sub, reconnects } = subscribe(client);
    const it = sub[Symbol.asyncIterator]();
    await waitUntil(() => sub.connected, "subscribed");
    expect(sub.url).toBe(base(first));
    first.push(first.last, "1");
    const [m] = (await takeMessages(it, 1)) as Message[];

    await first.close(); // the node dies: its socket drops and it refuses connections
    await waitUntil(() => !sub.connected, "disconnected");
    m!.ack(); // queued until the next connection
    await waitUntil(() => sub.connected && second.peers.length === 1, "subscribed to the second server", 3_000);
    expect(sub.url).toBe(base(second));
    expect(reconnects.map((r) => r.url)).toEqual([base(second)]);
    await waitUntil(() => second.last.frames.length > 0, "the ack on the second server");
    expect(second.last.frames).toEqual([{ type: "ack", ids: ["1"] }]);
    second.push(second.last, "2");
    expect((await takeMessages(it, 1)).map((x) => x.id)).toEqual(["2"]);
  });

  it("goes round the list past servers that refuse, and back to the first once it is up again", async () => {
    const [first, third] = [await fakeServer(), await fakeServer()];
    const down = await deadPort();
    const urls = [base(first), base(down), base(third)];
    const client = clientStartingAtFirst(urls, { fetch: noHttp });
    const { sub, reconnects } = subscribe(client);
    await waitUntil(() => sub.connected, "subscribed");
    const firstPort = first.port;
    await first.close();
    servers.splice(servers.indexOf(first), 1);
    await waitUntil(() => sub.connected && third.peers.length === 1, "subscribed to the third server", 3_000);
    expect(reconnects.map((r) => r.url)).toEqual([urls[1], urls[2]]);

    const again = await fakeServer(firstPort); // the first node restarted
    third.last.socket.close(1001, "server shutting down");
    await waitUntil(() => sub.connected && again.peers.length === 1, "back on the first server", 3_000);
    expect(sub.url).toBe(urls[0]);
    expect(reconnects.map((r) => r.url)).toEqual([urls[1], urls[2], urls[0]]);
  });

  it("does not wait for a refusing server's retry-after before trying the next server", async () => {
    const [busy, free] = [await fakeServer(), await fakeServer()];
    busy.refuseWithRetryAfter = "30"; // seconds
    const client = clientStartingAtFirst([base(busy), base(free)], { fetch: noHttp });
    const { sub, reconnects } = subscribe(client);
    await waitUntil(() => sub.connected, "subscribed to the second server", 2_000);
    expect(sub.url).toBe(base(free));
    expect(reconnects).toHaveLength(1);
    expect(reconnects[0]!.delayMs).toBeLessThan(1_000);
    expect(reconnects[0]!.error).toMatchObject({ status: 503, retryAfterMs: 30_000 });
  });

  it("starts a new subscription where the client's requests went last", async () => {
    const second = await fakeServer();
    const down = await deadPort();
    const f = fakeFetch((origin) => {
      if (origin === base(down)) throw refused();
      return json(200, { tables: [] });
    });
    const client = clientStartingAtFirst([base(down), base(second)], { fetch: f.fn });
    await client.listTables();
    expect(client.url).toBe(base(second));
    const { sub, reconnects } = subscribe(client);
    await waitUntil(() => sub.connected, "subscribed");
    expect(sub.url).toBe(base(second));
    expect(reconnects).toEqual([]);
  });
});
