/** The limits that protect the server: the request rate limit (per token or client address) and max connections. */
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { afterEach, expect, it } from "vitest";
import WebSocket from "ws";
import type { ServerConfig } from "../../src/server/config.js";
import type { RunningServer } from "../../src/server/server.js";
import { describeWithDatabase, useOwnDatabase } from "../support/database.js";
import { http, startTestServer } from "../support/server.js";
import { sleep, waitUntil } from "../support/wait.js";

/** One request on a connection of its own (no keep-alive pool, so the test controls the connections). */
function once(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; body?: unknown } = {},
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (opts.body !== undefined) headers["content-type"] = "application/json";
    const req = request(base + path, { method, agent: false, headers }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on("error", reject);
    req.setTimeout(3_000, () => req.destroy(new Error("timed out")));
    req.end(opts.body === undefined ? undefined : JSON.stringify(opts.body));
  });
}

/** Tries the WebSocket upgrade; resolves with the refusal's status, or 101 when it opened. */
function upgradeStatus(base: string, table: string): Promise<{ status: number; retryAfter?: string; socket?: WebSocket }> {
  const socket = new WebSocket(`${base.replace(/^http/, "ws")}/v1/tables/${table}/subscribe`);
  return new Promise((resolve, reject) => {
    socket.once("unexpected-response", (_req, res) => {
      resolve({ status: res.statusCode ?? 0, retryAfter: res.headers["retry-after"] as string | undefined });
      socket.terminate();
    });
    socket.once("open", () => resolve({ status: 101, socket }));
    socket.once("error", (err) => {
      if (!/closed before the connection/.test(err.message)) reject(err);
    });
  });
}

describeWithDatabase("server limits", () => {
  const database = useOwnDatabase("limits_e2e");
  let server: RunningServer | undefined;
  const sockets: Array<Socket | WebSocket> = [];

  const start = async (overrides: Partial<ServerConfig>) => {
    server = await startTestServer(database.url, overrides);
    return server.url;
  };
  afterEach(async () => {
    for (const s of sockets.splice(0)) {
      if (s instanceof WebSocket) s.terminate();
      else s.destroy();
    }
    await server?.close();
    server = undefined;
  });

  it("answers 429 overloaded with retry-after above the rate, per client address, and recovers at the rate", async () => {
    const base = await start({ rateLimitPerSec: 1, rateLimitBurst: 3 });
    for (let i = 0; i < 3; i++) expect((await http(base, "GET", "/v1/tables")).status, `request ${i + 1}`).toBe(200);
    const limited = await http(base, "GET", "/v1/tables");
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("1");
    expect(limited.body).toEqual({
      error: { code: "overloaded", message: expect.stringContaining("rate limit exceeded (1 requests/s, burst 3)") },
    });
    // Any route under /v1 counts, a refused upgrade too (before upgrading).
    expect((await http(base, "PUT", "/v1/tables/limited", {})).status).toBe(429);
    expect(await upgradeStatus(base, "limited")).toMatchObject({ status: 429, retryAfter: "1" });
    // The operations routes are not limited.
    for (const path of ["/healthz", "/readyz", "/metrics"]) expect((await http(base, "GET", path)).status, path).toBe(200);
    await sleep(1_050); // one token back at 1/s
    expect((await http(base, "GET", "/v1/tables")).status).toBe(200);
    expect((await http(base, "GET", "/v1/tables")).status).toBe(429);
    const metrics = await http(base, "GET", "/metrics");
    expect(metrics.body).toMatch(/tablemq_requests_rejected_total\{reason="rate_limited"\} [3-9]/);
  });

  it("limits each token on its own, and requests without a valid token by address (guessing tokens is limited)", async () => {
    const base = await start({
      rateLimitPerSec: 1,
      rateLimitBurst: 2,
      authTokens: { "token-a": { "*": ["consume"] }, "token-b": { "*": ["consume"] } },
    });
    const as = (token?: string) => once(base, "GET", "/v1/tables", token === undefined ? {} : { token });
    expect((await as("token-a")).status).toBe(200);
    expect((await as("token-a")).status).toBe(200);
    const limited = await as("token-a");
    expect(limited.status).toBe(429);
    expect(limited.headers["retry-after"]).toBe("1");
    expect(JSON.parse(limited.body).error.code).toBe("overloaded");
    expect((await as("token-b")).status).toBe(200); // a bucket of its own
    // Bad tokens and no token share the client address's bucket: 401 until it is empty, then 429.
    expect((await as("guess-1")).status).toBe(401);
    expect((await as()).status).toBe(401);
    expect((await as("guess-2")).status).toBe(429);
    expect((await as("token-b")).status).toBe(200); // unaffected by the guessing
  });

  it("does not limit when the rate is 0 (the default)", async () => {
    const base = await start({});
    for (let i = 0; i < 30; i++) expect((await http(base, "GET", "/v1/tables")).status).toBe(200);
  });

  it("closes connections beyond TABLEMQ_MAX_CONNECTIONS at once, WebSocket subscribers included, and accepts again once one closes", async () => {
    const base = await start({ maxConnections: 2 });
    expect((await once(base, "PUT", "/v1/tables/conn", { body: {} })).status).toBe(201);
    const connections = () => new Promise<number>((resolve) => server!.app.server.getConnections((_e, n) => resolve(n)));
    await waitUntil(async () => (await connections()) === 0, "the PUT's connection closed");
    const port = new URL(base).port;
    // Connection 1: a subscriber. Connection 2: an idle TCP connection.
    const sub = await upgradeStatus(base, "conn");
    expect(sub.status).toBe(101);
    sockets.push(sub.socket!);
    const idle = connect(Number(port), "127.0.0.1");
    sockets.push(idle);
    await new Promise((resolve) => idle.once("connect", resolve));
    await waitUntil(async () => (await connections()) === 2, "both test connections accepted");

    await expect(once(base, "GET", "/healthz")).rejects.toThrow(/socket hang up|ECONNRESET|EPIPE/);

    idle.destroy();
    await waitUntil(
      async () => (await once(base, "GET", "/healthz").catch(() => ({ status: 0 }))).status === 200,
      "a connection accepted again",
    );
    const metrics = await once(base, "GET", "/metrics");
    expect(metrics.body).toMatch(/tablemq_connections_dropped_total [1-9]/);
  });
});
