import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Authenticator, credentialOf, selectProtocol } from "../../../src/server/auth.js";
import { ConfigError, DEFAULT_MAX_CONNECTIONS, loadConfig } from "../../../src/server/config.js";

const SECRET = "s3cret-Token_1";

/** The ConfigError loadConfig throws for this environment. */
function configError(env: NodeJS.ProcessEnv, overrides: Record<string, unknown> = {}): ConfigError {
  try {
    loadConfig(env, overrides);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("loadConfig did not throw");
}

describe("auth settings", () => {
  it("are off by default; connections are capped at DEFAULT_MAX_CONNECTIONS", () => {
    expect(loadConfig({})).toMatchObject({
      authTokens: {},
      authTokensFile: "",
      metricsAuth: "open",
      rateLimitPerSec: 0,
      rateLimitBurst: 0,
      maxConnections: DEFAULT_MAX_CONNECTIONS,
    });
    expect(DEFAULT_MAX_CONNECTIONS).toBe(20_000);
    expect(loadConfig({ TABLEMQ_MAX_CONNECTIONS: "0" }).maxConnections).toBe(0); // no limit, as before
  });

  it("parse the token table from TABLEMQ_AUTH_TOKENS or a flag", () => {
    const tokens = { [SECRET]: { orders: ["publish", "consume", "publish"], "*": ["consume"] }, admin: { "*": ["admin", "metrics"] } };
    expect(loadConfig({ TABLEMQ_AUTH_TOKENS: JSON.stringify(tokens) }).authTokens).toEqual({
      [SECRET]: { orders: ["publish", "consume"], "*": ["consume"] },
      admin: { "*": ["admin", "metrics"] },
    });
    expect(loadConfig({}, { authTokens: JSON.stringify(tokens), metricsAuth: "token" })).toMatchObject({ metricsAuth: "token" });
  });

  it("read the token table from TABLEMQ_AUTH_TOKENS_FILE", () => {
    const dir = mkdtempSync(join(tmpdir(), "tablemq-auth-"));
    try {
      const file = join(dir, "tokens.json");
      writeFileSync(file, JSON.stringify({ [SECRET]: { "*": ["consume"] } }));
      expect(loadConfig({ TABLEMQ_AUTH_TOKENS_FILE: file }).authTokens).toEqual({ [SECRET]: { "*": ["consume"] } });
      expect(configError({ TABLEMQ_AUTH_TOKENS_FILE: join(dir, "missing.json") }).message).toMatch(
        /^TABLEMQ_AUTH_TOKENS_FILE: cannot read .*ENOENT/,
      );
      writeFileSync(file, `{"${SECRET}": {"*": ["consume"]}`);
      expect(configError({ TABLEMQ_AUTH_TOKENS_FILE: file }).message).toMatch(/^TABLEMQ_AUTH_TOKENS_FILE \(.*tokens.json\) must be JSON/);
      expect(configError({ TABLEMQ_AUTH_TOKENS_FILE: file, TABLEMQ_AUTH_TOKENS: "{}" }).message).toContain("both set");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuse a bad token table with a message naming the variable and never the token", () => {
    const cases: Array<[unknown, RegExp]> = [
      [`{"${SECRET}": `, /^TABLEMQ_AUTH_TOKENS must be JSON .*malformed JSON/],
      [[SECRET], /^TABLEMQ_AUTH_TOKENS must be a JSON object/],
      [{ "": { "*": ["consume"] } }, /^TABLEMQ_AUTH_TOKENS: token #1 is empty/],
      [{ a: { "*": ["consume"] }, [`${SECRET} x`]: { "*": ["consume"] } }, /^TABLEMQ_AUTH_TOKENS: token #2 has a character/],
      [{ [SECRET]: ["consume"] }, /^TABLEMQ_AUTH_TOKENS: token #1: its grants must be an object/],
      [{ [SECRET]: { orders: ["publish", "peek"] } }, /^TABLEMQ_AUTH_TOKENS: token #1: unknown scope "peek" on "orders"/],
      [{ [SECRET]: { orders: "publish" } }, /^TABLEMQ_AUTH_TOKENS: token #1: the scopes of "orders" must be an array/],
      [{ [SECRET]: { Orders: ["publish"] } }, /^TABLEMQ_AUTH_TOKENS: token #1: "Orders" is not a table name/],
      [{ [SECRET]: { orders: ["metrics"] } }, /^TABLEMQ_AUTH_TOKENS: token #1: the metrics scope is server-wide: grant it under "\*"/],
    ];
    for (const [value, message] of cases) {
      const err = configError({ TABLEMQ_AUTH_TOKENS: typeof value === "string" ? value : JSON.stringify(value) });
      expect(err.message).toMatch(message);
      expect(err.message).not.toContain(SECRET);
    }
    expect(configError({}, { authTokens: "[]" }).message).toMatch(/^--auth-tokens must be a JSON object/);
  });

  it("refuse TABLEMQ_METRICS_AUTH other than open|token, and token without a token that has the metrics scope", () => {
    expect(configError({ TABLEMQ_METRICS_AUTH: "closed" }).message).toBe('TABLEMQ_METRICS_AUTH must be open or token, got "closed"');
    expect(configError({ TABLEMQ_METRICS_AUTH: "token" }).message).toMatch(/no token .* has the metrics scope/);
    expect(configError({ TABLEMQ_METRICS_AUTH: "token", TABLEMQ_AUTH_TOKENS: JSON.stringify({ a: { "*": ["admin"] } }) }).message).toMatch(
      /metrics scope/,
    );
  });

  it("are checked again when a typed config skips loadConfig", () => {
    expect(() => new Authenticator({ authTokens: { [SECRET]: { orders: ["nope" as never] } }, metricsAuth: "open" })).toThrow(ConfigError);
    expect(() => new Authenticator({ authTokens: {}, metricsAuth: "token" })).toThrow(ConfigError);
  });
});

describe("Authenticator", () => {
  const auth = new Authenticator({
    authTokens: { [SECRET]: { orders: ["publish"] }, other: { "*": ["consume", "metrics"] } },
    metricsAuth: "open",
  });

  it("identifies configured tokens only, exactly", () => {
    expect(auth.enabled).toBe(true);
    const p = auth.identify(SECRET)!;
    expect(p.id).toBe(1);
    expect(p.has("publish", "orders")).toBe(true);
    expect(p.has("consume", "orders")).toBe(false);
    expect(p.has("publish", "billing")).toBe(false);
    expect(p.seesTable("orders")).toBe(true);
    expect(p.seesTable("billing")).toBe(false);
    const wild = auth.identify("other")!;
    expect(wild.has("consume", "anything")).toBe(true);
    expect(wild.seesTable("anything")).toBe(true);
    for (const bad of ["", "s3cret", SECRET + "x", SECRET.toUpperCase(), "othe", " other"]) expect(auth.identify(bad)).toBeUndefined();
  });

  it("is off without tokens", () => {
    expect(new Authenticator({ authTokens: {}, metricsAuth: "open" }).enabled).toBe(false);
  });
});

describe("credentialOf", () => {
  const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

  it("reads `authorization: Bearer <token>` (scheme in any case)", () => {
    expect(credentialOf(req({ authorization: `Bearer ${SECRET}` }))).toEqual({ token: SECRET });
    expect(credentialOf(req({ authorization: `bearer  ${SECRET} ` }))).toEqual({ token: SECRET });
    expect(credentialOf(req({ authorization: `Basic abc` }))).toHaveProperty("malformed");
    expect(credentialOf(req({ authorization: `Bearer` }))).toHaveProperty("malformed");
    expect(credentialOf(req({ authorization: `Bearer a b` }))).toHaveProperty("malformed");
    expect(credentialOf(req({}))).toBeUndefined();
  });

  it("reads a `bearer.<token>` WebSocket subprotocol on an upgrade without an authorization header", () => {
    const ws = { upgrade: "websocket", "sec-websocket-protocol": `tablemq.v1, bearer.${SECRET}` };
    expect(credentialOf(req(ws))).toEqual({ token: SECRET });
    expect(credentialOf(req({ ...ws, authorization: "Bearer other" }))).toEqual({ token: "other" });
    expect(credentialOf(req({ "sec-websocket-protocol": `bearer.${SECRET}` }))).toBeUndefined(); // not an upgrade
    expect(credentialOf(req({ upgrade: "websocket", "sec-websocket-protocol": "tablemq.v1, bearer." }))).toBeUndefined();
  });
});

describe("selectProtocol", () => {
  it("never echoes a bearer protocol", () => {
    expect(selectProtocol(new Set([`bearer.${SECRET}`, "tablemq.v1"]))).toBe("tablemq.v1");
    expect(selectProtocol(new Set([`bearer.${SECRET}`, "chat"]))).toBe("chat");
    expect(selectProtocol(new Set([`bearer.${SECRET}`]))).toBe(false);
  });
});
