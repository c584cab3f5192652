/**
 * Authentication and authorization end to end: every route and the WebSocket upgrade against no token,
 * a bad token, tokens without the scope, a token with the scopes on another table, a wildcard token and
 * the right token; the open operations routes; /metrics open and behind a token; tokens never logged; and
 * the client library with a token.
 */
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { TablemqClient } from "../../src/client/client.js";
import { TablemqError } from "../../src/client/http.js";
import { loadConfig, type Scope } from "../../src/server/config.js";
import { createLogger, type RunningServer, startServer } from "../../src/server/server.js";
import { describeWithDatabase, useOwnDatabase } from "../support/database.js";
import { startTestServer } from "../support/server.js";
import { waitUntil } from "../support/wait.js";

const FAST = { ackWaitMs: 600, minBackoffMs: 600, pollIntervalMs: 200 };
const T = "orders";
const OTHER = "billing";

/** Token names → secret values (random per run) and their grants. */
const secret = (name: string) => `${name}-${randomBytes(12).toString("base64url")}`;
const TOKENS = {
  publisher: secret("publisher"),
  consumer: secret("consumer"),
  admin: secret("admin"),
  other: secret("other"),
  wild: secret("wild"),
  metrics: secret("metrics"),
} as const;
type TokenName = keyof typeof TOKENS;
const GRANTS: Record<TokenName, Record<string, Scope[]>> = {
  publisher: { [T]: ["publish"] },
  consumer: { [T]: ["consume"] },
  admin: { [T]: ["admin"] },
  other: { [OTHER]: ["publish", "consume", "admin"] },
  wild: { "*": ["publish", "consume", "admin"] },
  metrics: { "*": ["metrics"] },
};
const AUTH_TOKENS = Object.fromEntries(Object.entries(TOKENS).map(([name, token]) => [token, GRANTS[name as TokenName]]));
const BAD = "not-a-configured-token";

interface Result {
  status: number;
  body: any;
  headers: Headers;
}

/** One HTTP request with an optional bearer token (or a raw authorization header). */
async function call(
  base: string,
  method: string,
  path: string,
  opts: { token?: string; authorization?: string; body?: unknown } = {},
): Promise<Result> {
  const headers: Record<string, string> = {};
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  if (opts.authorization !== undefined) headers.authorization = opts.authorization;
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(base + path, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text === "" ? undefined : JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body, headers: res.headers };
}

type Upgrade = { status: number; body: any } | { socket: WebSocket; protocol: string; first: any };

/** Tries the WebSocket upgrade: the refusal's status and body, or the open socket and its first frame. */
function upgrade(base: string, table: string, opts: { token?: string; protocols?: string[] } = {}): Promise<Upgrade> {
  const headers = opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` };
  const socket = new WebSocket(`${base.replace(/^http/, "ws")}/v1/tables/${table}/subscribe`, opts.protocols ?? [], { headers });
  return new Promise((resolve, reject) => {
    socket.once("unexpected-response", (_req, res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.on("end", () => {
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
        socket.terminate();
      });
    });
    socket.once("message", (data) => resolve({ socket, protocol: socket.protocol, first: JSON.parse(data.toString()) }));
    socket.once("error", (err) => {
      if (!/closed before the connection/.test(err.message)) reject(err);
    });
  });
}

function expectUnauthorized(r: { status: number; body: any; headers?: Headers }, what: string): void {
  expect(r.status, what).toBe(401);
  expect(r.body?.error?.code, what).toBe("unauthorized");
  if (r.headers) expect(r.headers.get("www-authenticate"), what).toMatch(/^Bearer realm="tablemq"/);
}

function expectForbidden(
  r: { status: number; body: any; headers?: Headers },
  scope: Scope | "any",
  table: string | undefined,
  what: string,
): void {
  expect(r.status, what).toBe(403);
  expect(r.body?.error?.code, what).toBe("forbidden");
  if (scope !== "any") expect(r.body.error.message, what).toContain(scope);
  if (table) expect(r.body.error.message, what).toContain(JSON.stringify(table));
}

/** Each HTTP route on table T with the scope it needs and the tokens on T that lack it / have it. */
interface RouteCase {
  name: string;
  method: string;
  path: string;
  body?: unknown;
  scope: Scope | "any";
  lacking: TokenName[];
  right: TokenName[];
  ok: number[];
}
const ROUTES: RouteCase[] = [
  {
    name: "PUT /v1/tables/{t}",
    method: "PUT",
    path: `/v1/tables/${T}`,
    body: FAST,
    scope: "admin",
    lacking: ["publisher", "consumer", "metrics"],
    right: ["admin"],
    ok: [200, 201],
  },
  {
    name: "GET /v1/tables/{t}",
    method: "GET",
    path: `/v1/tables/${T}`,
    scope: "any",
    lacking: ["metrics"],
    right: ["publisher", "consumer", "admin"],
    ok: [200],
  },
  {
    name: "POST /v1/tables/{t}/messages",
    method: "POST",
    path: `/v1/tables/${T}/messages`,
    body: { messages: [{ payload: { n: 1 } }] },
    scope: "publish",
    lacking: ["consumer", "admin", "metrics"],
    right: ["publisher"],
    ok: [201],
  },
  {
    name: "POST /v1/tables/{t}/ack",
    method: "POST",
    path: `/v1/tables/${T}/ack`,
    body: { ids: ["1"] },
    scope: "consume",
    lacking: ["publisher", "admin", "metrics"],
    right: ["consumer"],
    ok: [200],
  },
  {
    name: "POST /v1/tables/{t}/postpone",
    method: "POST",
    path: `/v1/tables/${T}/postpone`,
    body: { ids: ["1"], delayMs: 10 },
    scope: "consume",
    lacking: ["publisher", "admin", "metrics"],
    right: ["consumer"],
    ok: [200],
  },
  {
    name: "GET /v1/tables/{t}/messages",
    method: "GET",
    path: `/v1/tables/${T}/messages?limit=10`,
    scope: "consume",
    lacking: ["publisher", "admin", "metrics"],
    right: ["consumer"],
    ok: [200],
  },
  // 404 message_not_found: no message has id 1 (the server made the ids).
  {
    name: "GET /v1/tables/{t}/messages/{id}",
    method: "GET",
    path: `/v1/tables/${T}/messages/1`,
    scope: "consume",
    lacking: ["publisher", "admin", "metrics"],
    right: ["consumer"],
    ok: [404],
  },
  {
    name: "PUT /v1/tables/{t}/webhooks/{name}",
    method: "PUT",
    path: `/v1/tables/${T}/webhooks/audit`,
    body: { url: "http://127.0.0.1:9/hook" },
    scope: "admin",
    lacking: ["publisher", "consumer", "metrics"],
    right: ["admin"],
    ok: [200, 201],
  },
  {
    name: "GET /v1/tables/{t}/webhooks",
    method: "GET",
    path: `/v1/tables/${T}/webhooks`,
    scope: "admin",
    lacking: ["publisher", "consumer", "metrics"],
    right: ["admin"],
    ok: [200],
  },
  // 404 when an earlier case dropped the table (and its webhooks) or deleted the webhook.
  {
    name: "GET /v1/tables/{t}/webhooks/{name}",
    method: "GET",
    path: `/v1/tables/${T}/webhooks/audit`,
    scope: "admin",
    lacking: ["publisher", "consumer", "metrics"],
    right: ["admin"],
    ok: [200, 404],
  },
  {
    name: "DELETE /v1/tables/{t}/webhooks/{name}",
    method: "DELETE",
    path: `/v1/tables/${T}/webhooks/audit`,
    scope: "admin",
    lacking: ["publisher", "consumer", "metrics"],
    right: ["admin"],
    ok: [200, 404],
  },
  {
    name: "DELETE /v1/tables/{t}",
    method: "DELETE",
    path: `/v1/tables/${T}`,
    scope: "admin",
    lacking: ["publisher", "consumer", "metrics"],
    right: ["admin"],
    ok: [200],
  },
];

describeWithDatabase("authentication and authorization", () => {
  const database = useOwnDatabase("auth_e2e");

  describe("with tokens configured", () => {
    let server: RunningServer;
    let base: string;
    const ensureTables = async () => {
      for (const t of [T, OTHER])
        expect((await call(base, "PUT", `/v1/tables/${t}`, { token: TOKENS.wild, body: FAST })).status).toBeLessThan(300);
    };

    beforeAll(async () => {
      server = await startTestServer(database.url, { authTokens: AUTH_TOKENS });
      base = server.url;
      await ensureTables();
    });
    afterAll(async () => {
      await server?.close();
    });

    for (const route of ROUTES) {
      describe(route.name, () => {
        const send = async (opts: { token?: string; authorization?: string }) => {
          await ensureTables(); // DELETE drops T; every case starts with it
          return call(base, route.method, route.path, { ...opts, body: route.body });
        };

        it("refuses a request without a token: 401 with a Bearer challenge", async () => {
          expectUnauthorized(await send({}), "no token");
        });

        it("refuses a bad token or a malformed authorization header: 401", async () => {
          const bad = await send({ token: BAD });
          expectUnauthorized(bad, "bad token");
          expect(bad.headers.get("www-authenticate")).toContain('error="invalid_token"');
          expectUnauthorized(await send({ authorization: `Basic ${Buffer.from(`x:${TOKENS.wild}`).toString("base64")}` }), "basic auth");
          expectUnauthorized(await send({ authorization: `Bearer ${TOKENS.wild}x` }), "token with a suffix");
        });

        it(`refuses tokens without ${route.scope === "any" ? "any" : `the ${route.scope}`} scope on the table: 403 naming scope and table`, async () => {
          for (const name of route.lacking) expectForbidden(await send({ token: TOKENS[name] }), route.scope, T, name);
        });

        it("refuses a token with every scope on another table: 403", async () => {
          expectForbidden(await send({ token: TOKENS.other }), route.scope, T, "other");
        });

        it("serves a wildcard token", async () => {
          const r = await send({ token: TOKENS.wild });
          expect(route.ok, JSON.stringify(r.body)).toContain(r.status);
        });

        it("serves the right token", async () => {
          for (const name of route.right) {
            const r = await send({ token: TOKENS[name] });
            expect(route.ok, `${name}: ${JSON.stringify(r.body)}`).toContain(r.status);
          }
        });
      });
    }

    it("a refused request changes nothing", async () => {
      await ensureTables();
      const before = (await call(base, "GET", `/v1/tables/${T}`, { token: TOKENS.wild })).body;
      expect((await call(base, "PUT", `/v1/tables/${T}`, { token: TOKENS.publisher, body: { ackWaitMs: 1234 } })).status).toBe(403);
      expect(
        (await call(base, "POST", `/v1/tables/${T}/messages`, { token: TOKENS.consumer, body: { messages: [{ payload: 1 }] } })).status,
      ).toBe(403);
      expect((await call(base, "DELETE", `/v1/tables/${T}`, { token: TOKENS.other })).status).toBe(403);
      expect((await call(base, "DELETE", `/v1/tables/${T}`)).status).toBe(401);
      const after = (await call(base, "GET", `/v1/tables/${T}`, { token: TOKENS.wild })).body;
      expect(after.options).toEqual(before.options);
      expect(after.stats.ready + after.stats.delayed).toBe(before.stats.ready + before.stats.delayed);
    });

    describe("GET /v1/tables", () => {
      it("refuses no token and a bad token: 401", async () => {
        expectUnauthorized(await call(base, "GET", "/v1/tables"), "no token");
        expectUnauthorized(await call(base, "GET", "/v1/tables", { token: BAD }), "bad token");
      });

      it("lists only the tables the token has a scope on", async () => {
        await ensureTables();
        const names = async (name: TokenName) => {
          const r = await call(base, "GET", "/v1/tables", { token: TOKENS[name] });
          expect(r.status).toBe(200);
          return (r.body.tables as Array<{ name: string }>).map((t) => t.name).sort();
        };
        expect(await names("wild")).toEqual([OTHER, T]);
        expect(await names("publisher")).toEqual([T]);
        expect(await names("consumer")).toEqual([T]);
        expect(await names("admin")).toEqual([T]);
        expect(await names("other")).toEqual([OTHER]);
        expect(await names("metrics")).toEqual([]);
      });
    });

    describe("GET /v1/tables/{t}/subscribe (WebSocket upgrade)", () => {
      it("refuses the upgrade without a token or with a bad one: 401 before upgrading", async () => {
        expectUnauthorized((await upgrade(base, T)) as Result, "no token");
        expectUnauthorized((await upgrade(base, T, { token: BAD })) as Result, "bad token");
        expectUnauthorized((await upgrade(base, T, { protocols: ["tablemq.v1", `bearer.${BAD}`] })) as Result, "bad subprotocol token");
      });

      it("refuses tokens without consume on the table, or with it on another table: 403 before upgrading", async () => {
        for (const name of ["publisher", "admin", "metrics", "other"] as const) {
          expectForbidden((await upgrade(base, T, { token: TOKENS[name] })) as Result, "consume", T, name);
        }
        expectForbidden(
          (await upgrade(base, T, { protocols: ["tablemq.v1", `bearer.${TOKENS.publisher}`] })) as Result,
          "consume",
          T,
          "publisher (subprotocol)",
        );
      });

      it("upgrades for the consume scope, wildcard or not, by header or `bearer.` subprotocol", async () => {
        await ensureTables();
        for (const opts of [
          { token: TOKENS.consumer },
          { token: TOKENS.wild },
          { protocols: ["tablemq.v1", `bearer.${TOKENS.consumer}`] },
        ]) {
          const r = await upgrade(base, T, opts);
          expect("socket" in r, JSON.stringify(r)).toBe(true);
          if (!("socket" in r)) continue;
          expect(r.first).toMatchObject({ type: "subscribed", table: T });
          // The server selects tablemq.v1 and never echoes the bearer protocol.
          expect(r.protocol).toBe(opts.protocols ? "tablemq.v1" : "");
          r.socket.close();
        }
      });
    });

    it("leaves /healthz and /readyz open (a token is ignored there)", async () => {
      for (const path of ["/healthz", "/readyz"]) {
        expect((await call(base, "GET", path)).status, path).toBe(200);
        expect((await call(base, "GET", path, { token: BAD })).status, path).toBe(200);
      }
    });

    it("leaves /metrics open by default, and counts refusals there", async () => {
      await call(base, "GET", "/v1/tables");
      const r = await call(base, "GET", "/metrics");
      expect(r.status).toBe(200);
      expect(r.body).toMatch(/tablemq_requests_rejected_total\{reason="unauthorized"\} [1-9]/);
      expect(r.body).toMatch(/tablemq_requests_rejected_total\{reason="forbidden"\} [1-9]/);
    });

    it("asks for a token on unknown routes too, then answers 404", async () => {
      expectUnauthorized(await call(base, "GET", "/v1/nothing"), "no token");
      expect((await call(base, "GET", "/v1/nothing", { token: TOKENS.metrics })).status).toBe(404);
    });

    it("works with the client library: each token does what its scopes allow", async () => {
      await ensureTables();
      const client = (name?: TokenName) => new TablemqClient({ url: base, timeoutMs: 5_000, ...(name ? { token: TOKENS[name] } : {}) });
      const table = "client_flow";
      const wild = client("wild");
      expect((await wild.createTable(table, FAST)).created).toBe(true);
      try {
        const anonymous = await client()
          .listTables()
          .catch((e: unknown) => e);
        expect(anonymous).toBeInstanceOf(TablemqError);
        expect(anonymous).toMatchObject({ status: 401, code: "unauthorized" });
        await expect(client("publisher").publish(table, [{ payload: 1 }])).rejects.toMatchObject({ status: 403, code: "forbidden" });
        expect((await client("other").listTables()).map((t) => t.name)).toEqual([OTHER]);

        const { ids } = await wild.publish(table, [{ payload: { n: 1 } }, { payload: { n: 2 } }]);
        // A subscription with a token lacking consume ends for good with the 403.
        const refused = client("publisher").subscribe(table, { reconnect: false });
        await expect(refused.done()).rejects.toMatchObject({ status: 403, code: "forbidden" });

        const sub = wild.subscribe<{ n: number }>(table, { maxInFlight: 10 });
        const seen: string[] = [];
        try {
          for await (const msg of sub) {
            seen.push(msg.id);
            msg.ack(); // over the socket the token opened
            if (seen.length === 2) break;
          }
        } finally {
          await sub.close();
        }
        expect(seen.sort()).toEqual([...ids].sort());
        await waitUntil(async () => (await wild.describeTable(table)).stats.acked === 2, "both acked", 5_000);
        await expect(client("consumer").ack(table, ids)).rejects.toMatchObject({ status: 403 });
      } finally {
        await wild.dropTable(table);
      }
    });
  });

  describe("with TABLEMQ_METRICS_AUTH=token", () => {
    let server: RunningServer;
    beforeAll(async () => {
      server = await startTestServer(database.url, { authTokens: AUTH_TOKENS, metricsAuth: "token" });
    });
    afterAll(async () => {
      await server?.close();
    });

    it("/metrics needs a token with the metrics scope", async () => {
      expectUnauthorized(await call(server.url, "GET", "/metrics"), "no token");
      expectUnauthorized(await call(server.url, "GET", "/metrics", { token: BAD }), "bad token");
      for (const name of ["wild", "admin", "other"] as const)
        expectForbidden(await call(server.url, "GET", "/metrics", { token: TOKENS[name] }), "metrics", undefined, name);
      const r = await call(server.url, "GET", "/metrics", { token: TOKENS.metrics });
      expect(r.status).toBe(200);
      expect(r.body).toContain("tablemq_tables");
    });

    it("keeps /healthz and /readyz open", async () => {
      expect((await call(server.url, "GET", "/healthz")).status).toBe(200);
      expect((await call(server.url, "GET", "/readyz")).status).toBe(200);
    });
  });

  describe("logging", () => {
    it("never writes a token to the log, even at trace level", async () => {
      let log = "";
      const sink = new Writable({
        write(chunk, _enc, done) {
          log += chunk.toString();
          done();
        },
      });
      const config = { ...loadConfig({}, { databaseUrl: database.url, port: 0, host: "127.0.0.1" }), authTokens: AUTH_TOKENS };
      const server = await startServer(config, { logger: createLogger("trace", sink) });
      try {
        await call(server.url, "GET", "/v1/tables", { token: TOKENS.wild });
        await call(server.url, "GET", "/v1/tables", { token: BAD });
        await call(server.url, "PUT", `/v1/tables/${T}`, { token: TOKENS.publisher, body: FAST });
        await call(server.url, "POST", `/v1/tables/${T}/messages`, { token: TOKENS.publisher, body: { messages: [{ payload: 1 }] } });
        const ws = await upgrade(server.url, T, { protocols: ["tablemq.v1", `bearer.${TOKENS.consumer}`] });
        if ("socket" in ws) ws.socket.close();
        await upgrade(server.url, T, { token: TOKENS.admin });
        // A logger that logs the headers anyway is redacted.
        server.app.log.info(
          { req: { headers: { authorization: `Bearer ${TOKENS.other}` } }, headers: { authorization: `Bearer ${TOKENS.other}` } },
          "headers",
        );
      } finally {
        await server.close();
      }
      expect(log).toContain("incoming request");
      expect(log).toContain("request completed");
      for (const token of [...Object.values(TOKENS), BAD]) expect(log).not.toContain(token);
    });
  });
});
