/**
 * Bearer-token authentication and per-table authorization, and the onRequest hook that applies them
 * (with the rate limit) before anything else runs for a request: before the body is read, and before a
 * WebSocket upgrade, which is then refused with a plain HTTP status.
 *
 * Tokens come from the configuration (TABLEMQ_AUTH_TOKENS): `{"<token>": {"<table>" | "*": [scopes]}}`.
 * Without tokens authentication is off and every route is open, as before. With tokens, every route
 * needs a valid one except /healthz, /readyz, /openapi.json and (unless TABLEMQ_METRICS_AUTH=token) /metrics; the scope
 * a route needs is in ROUTE_SCOPES. Tokens are compared in constant time (SHA-256 digests of the presented
 * and each configured token, all compared with timingSafeEqual) and never logged: fastify's request
 * serializer logs the method and URL, not headers, and the server's logger redacts the headers anyway.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { FastifyReply, FastifyRequest } from "fastify";
import { Counter, type Registry } from "prom-client";
import { checkMetricsAuth, parseTokenTable, type Scope, type ServerConfig, TABLE_SCOPES } from "./config.js";
import { ApiError, sendError } from "./errors.js";
import type { RateLimiter } from "./rate-limit.js";

/**
 * What a route needs: nothing, a valid token, a scope on the route's table (one of a list of them, or any
 * table scope), or a server scope.
 */
export type Requirement =
  | { kind: "open" }
  | { kind: "token" }
  | { kind: "table"; scope: Scope | "any" | readonly Scope[] }
  | { kind: "server"; scope: Scope };

/** Views that consumers have always had, and a read-only token has too. */
const LOOK = ["consume", "read"] as const;

/**
 * The scope each route needs, by method (HEAD as GET) and route pattern. A route that is not listed
 * needs admin on "*" (fail closed); a request that matches no route needs a valid token (then 404s).
 * Every route is listed (test/e2e/openapi.test.ts checks it against the routes the server has); the
 * OpenAPI document (openapi.ts) shows each one's requirement.
 */
export const ROUTE_SCOPES = {
  "GET /healthz": { kind: "open" },
  "GET /readyz": { kind: "open" },
  "GET /openapi.json": { kind: "open" }, // the API's description: nothing in it is secret
  "GET /metrics": { kind: "server", scope: "metrics" }, // open unless metricsAuth is "token"
  "GET /v1/nodes": { kind: "token" }, // which nodes serve this database: any valid token
  "GET /v1/tables": { kind: "token" }, // lists only the tables the token has a scope on
  "GET /v1/tables/:table": { kind: "table", scope: "any" },
  "PUT /v1/tables/:table": { kind: "table", scope: "admin" },
  "DELETE /v1/tables/:table": { kind: "table", scope: "admin" },
  "POST /v1/tables/:table/messages": { kind: "table", scope: "publish" },
  "POST /v1/tables/:table/ack": { kind: "table", scope: "consume" },
  "POST /v1/tables/:table/postpone": { kind: "table", scope: "consume" },
  "POST /v1/tables/:table/fail": { kind: "table", scope: "consume" },
  "POST /v1/tables/:table/extend": { kind: "table", scope: "consume" },
  "POST /v1/tables/:table/release": { kind: "table", scope: "consume" },
  "POST /v1/tables/:table/wake": { kind: "table", scope: "publish" },
  "GET /v1/tables/:table/dead": { kind: "table", scope: LOOK },
  // Browsing shows payloads, which consumers may read anyway; it changes nothing.
  "GET /v1/tables/:table/messages": { kind: "table", scope: LOOK },
  "GET /v1/tables/:table/messages/:id": { kind: "table", scope: LOOK },
  "POST /v1/tables/:table/messages/:id/deliver": { kind: "table", scope: "admin" },
  "DELETE /v1/tables/:table/messages/:id": { kind: "table", scope: "admin" },
  "POST /v1/tables/:table/purge": { kind: "table", scope: "admin" },
  "POST /v1/tables/:table/pause": { kind: "table", scope: "admin" },
  "POST /v1/tables/:table/resume": { kind: "table", scope: "admin" },
  "POST /v1/tables/:table/redrive": { kind: "table", scope: "admin" },
  "GET /v1/tables/:table/subscribe": { kind: "table", scope: "consume" },
  "GET /v1/tables/:table/history": { kind: "table", scope: "any" },
  "GET /v1/events": { kind: "token" }, // shows only the tables the token has a scope on
  "GET /v1/whoami": { kind: "token" },
  // The dashboard's files: no data in them (the page asks for a token and reads the API with it).
  "GET /ui": { kind: "open" },
  "GET /ui/*": { kind: "open" },
  "GET /v1/tables/:table/webhooks": { kind: "table", scope: "admin" },
  "GET /v1/tables/:table/webhooks/:name": { kind: "table", scope: "admin" },
  "PUT /v1/tables/:table/webhooks/:name": { kind: "table", scope: "admin" },
  "DELETE /v1/tables/:table/webhooks/:name": { kind: "table", scope: "admin" },
} as const satisfies Readonly<Record<string, Requirement>>;

/** A route, as ROUTE_SCOPES names it: `<METHOD> <fastify pattern>`. */
export type RouteKey = keyof typeof ROUTE_SCOPES;

const SCOPES: Readonly<Record<string, Requirement>> = ROUTE_SCOPES;

const UNLISTED: Requirement = { kind: "server", scope: "admin" };
const NO_ROUTE: Requirement = { kind: "token" };
const OPEN: Requirement = { kind: "open" };

/** The WebSocket subprotocol the server selects when a client also offers `bearer.<token>` (browsers cannot set headers). */
export const WS_PROTOCOL = "tablemq.v1";
const WS_BEARER_PREFIX = "bearer.";

/** A token that matched: what it may do. `id` is its position in the configuration (for rate-limit keys; never the token). */
export class Principal {
  constructor(
    readonly id: number,
    private readonly grants: ReadonlyMap<string, ReadonlySet<Scope>>,
  ) {}

  /** The scope on this table, directly or through "*". */
  has(scope: Scope, table: string): boolean {
    return this.grants.get(table)?.has(scope) === true || this.grants.get("*")?.has(scope) === true;
  }

  /** Any table scope (publish, consume, admin, read) on this table: it may describe and list it. */
  seesTable(table: string): boolean {
    return TABLE_SCOPES.some((scope) => this.has(scope, table));
  }

  /** The scopes granted, by table name or "*" (GET /v1/whoami). */
  scopes(): Record<string, Scope[]> {
    return Object.fromEntries([...this.grants].map(([table, scopes]) => [table, [...scopes]]));
  }
}

/** The configured tokens: matches a presented token in constant time. */
export class Authenticator {
  readonly enabled: boolean;
  readonly metricsOpen: boolean;
  private readonly entries: ReadonlyArray<{ digest: Buffer; principal: Principal }>;

  constructor(config: Pick<ServerConfig, "authTokens" | "metricsAuth">) {
    const tokens = parseTokenTable(config.authTokens, "authTokens"); // typed overrides skip loadConfig
    checkMetricsAuth(config.metricsAuth, tokens);
    this.entries = Object.entries(tokens).map(([token, grants], i) => ({
      digest: digest(token),
      principal: new Principal(i + 1, new Map(Object.entries(grants).map(([table, scopes]) => [table, new Set(scopes)]))),
    }));
    this.enabled = this.entries.length > 0;
    this.metricsOpen = config.metricsAuth !== "token";
  }

  /** The principal of a presented token, or undefined. Compares against every configured token, without an early exit. */
  identify(token: string): Principal | undefined {
    const presented = digest(token);
    let found: Principal | undefined;
    for (const entry of this.entries) {
      const same = timingSafeEqual(presented, entry.digest);
      if (same && !found) found = entry.principal;
    }
    return found;
  }

  /** What this request's route needs. */
  requirement(req: FastifyRequest): Requirement {
    const pattern = req.routeOptions.url;
    if (pattern === undefined) return NO_ROUTE;
    const method = req.method === "HEAD" ? "GET" : req.method;
    const found = SCOPES[`${method} ${pattern}`] ?? UNLISTED;
    if (found.kind === "server" && found.scope === "metrics" && this.metricsOpen) return OPEN;
    return found;
  }
}

function digest(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

type Credential = { token: string } | { malformed: string } | undefined;

/**
 * The token a request presents: `authorization: Bearer <token>`, or on a WebSocket upgrade without that
 * header, a `Sec-WebSocket-Protocol` value `bearer.<token>`.
 */
export function credentialOf(raw: IncomingMessage): Credential {
  const header = raw.headers.authorization;
  if (header !== undefined) {
    const m = /^Bearer +(\S+) *$/i.exec(header);
    return m ? { token: m[1]! } : { malformed: "the authorization header must be `Bearer <token>`" };
  }
  const protocols = raw.headers["sec-websocket-protocol"];
  if (protocols !== undefined && raw.headers.upgrade?.toLowerCase() === "websocket") {
    for (const p of protocols.split(",")) {
      const value = p.trim();
      if (value.toLowerCase().startsWith(WS_BEARER_PREFIX) && value.length > WS_BEARER_PREFIX.length) {
        return { token: value.slice(WS_BEARER_PREFIX.length) };
      }
    }
  }
  return undefined;
}

/**
 * ws's handleProtocols: never selects (echoes) a `bearer.<token>` protocol; prefers tablemq.v1, else the
 * first other protocol offered, else none.
 */
export function selectProtocol(protocols: Set<string>): string | false {
  if (protocols.has(WS_PROTOCOL)) return WS_PROTOCOL;
  for (const p of protocols) if (!p.toLowerCase().startsWith(WS_BEARER_PREFIX)) return p;
  return false;
}

/** Principals of authenticated requests, for handlers that filter by what the token may see. */
const principals = new WeakMap<IncomingMessage, Principal>();

/** The scopes of this request's token by table, or undefined when authentication is off (everything is open). */
export function scopesOf(req: FastifyRequest): Record<string, Scope[]> | undefined {
  return principals.get(req.raw)?.scopes();
}

/** Whether this request may see the table (always, when authentication is off). */
export function canSeeTable(req: FastifyRequest, table: string): boolean {
  const principal = principals.get(req.raw);
  return principal === undefined || principal.seesTable(table);
}

const BEARER_CHALLENGE = 'Bearer realm="tablemq"';

/**
 * The onRequest hook: identifies the token, applies the rate limit (per token, or per client address
 * without a valid one, so guessing tokens is limited too), then answers 401 without a valid token and 403
 * without the route's scope. Open routes (/healthz, /readyz, /openapi.json, an open /metrics) skip all of it.
 */
export function accessHook(auth: Authenticator, limiter: RateLimiter | undefined, registry?: Registry) {
  const rejected = new Counter({
    name: "tablemq_requests_rejected_total",
    help: "Requests refused before they ran, by reason (unauthorized, forbidden, rate_limited)",
    labelNames: ["reason"],
    registers: registry ? [registry] : [],
  });
  const refuse = (reply: FastifyReply, reason: string, err: ApiError) => {
    rejected.inc({ reason });
    return sendError(reply, err);
  };

  return async function onRequest(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const needs = auth.requirement(req);
    if (needs.kind === "open") return undefined;

    let principal: Principal | undefined;
    let credential: Credential;
    if (auth.enabled) {
      credential = credentialOf(req.raw);
      if (credential && "token" in credential) principal = auth.identify(credential.token);
    }

    if (limiter) {
      const decision = limiter.take(principal ? `token#${principal.id}` : `addr ${req.ip}`);
      if (!decision.allowed) {
        const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
        return refuse(
          reply,
          "rate_limited",
          new ApiError(
            429,
            "overloaded",
            `rate limit exceeded (${limiter.ratePerSec} requests/s, burst ${limiter.burst}); retry in ${seconds} s`,
            {
              "retry-after": String(seconds),
            },
          ),
        );
      }
    }
    if (!auth.enabled) return undefined;

    if (!principal) {
      const message = !credential
        ? "a bearer token is required (authorization: Bearer <token>)"
        : "malformed" in credential
          ? credential.malformed
          : "the bearer token is not valid";
      const challenge = credential ? `${BEARER_CHALLENGE}, error="invalid_token"` : BEARER_CHALLENGE;
      return refuse(reply, "unauthorized", new ApiError(401, "unauthorized", message, { "www-authenticate": challenge }));
    }
    principals.set(req.raw, principal);

    const denied = deny(needs, principal, req);
    if (denied) {
      return refuse(
        reply,
        "forbidden",
        new ApiError(403, "forbidden", denied, { "www-authenticate": `${BEARER_CHALLENGE}, error="insufficient_scope"` }),
      );
    }
    return undefined;
  };
}

/** Why the principal may not do this, or undefined when it may. */
function deny(needs: Requirement, principal: Principal, req: FastifyRequest): string | undefined {
  switch (needs.kind) {
    case "open":
    case "token":
      return undefined;
    case "server":
      return principal.has(needs.scope, "*") ? undefined : `the token lacks the ${needs.scope} scope on "*"`;
    case "table": {
      const table = (req.params as { table?: unknown } | undefined)?.table;
      const name = typeof table === "string" ? table : "";
      if (needs.scope === "any") {
        return principal.seesTable(name) ? undefined : `the token has no scope on table ${JSON.stringify(name)}`;
      }
      const anyOf: readonly Scope[] = typeof needs.scope === "string" ? [needs.scope] : needs.scope;
      return anyOf.some((scope) => principal.has(scope, name))
        ? undefined
        : `the token lacks the ${anyOf.join(" or ")} scope on table ${JSON.stringify(name)}`;
    }
  }
}
