/**
 * GET /openapi.json (issue 24): an OpenAPI 3 document, open with authentication on, that has every route
 * the server has (with its scope from ROUTE_SCOPES, which must list every route too), and that agrees with
 * docs/API.md: every operation is listed there as "`METHOD /path`", and every route listed there exists.
 */
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { ROUTE_SCOPES } from "../../src/server/auth.js";
import { openApiPath } from "../../src/server/openapi.js";
import { VERSION } from "../../src/version.js";
import { ClientFrames, ServerFrames } from "../../src/wire.js";
import { describeWithDatabase } from "../support/database.js";
import { http, useTestServer } from "../support/server.js";

const API_MD = readFileSync(new URL("../../docs/API.md", import.meta.url), "utf8");
const METHODS = ["get", "put", "post", "delete", "patch", "head", "options", "trace"];
const TOKEN = "openapi-test-token";

interface Operation {
  tags?: string[];
  summary?: string;
  description?: string;
  security?: Array<Record<string, string[]>>;
  responses?: Record<string, unknown>;
  requestBody?: { required?: boolean };
  "x-tablemq-scope"?: unknown;
  "x-tablemq-websocket"?: { clientFrames: Record<string, unknown>; serverFrames: Record<string, unknown> };
}
interface Document {
  openapi: string;
  info: { title: string; version: string };
  tags?: Array<{ name: string }>;
  components?: { securitySchemes?: Record<string, { type: string; scheme?: string }>; responses?: Record<string, unknown> };
  paths: Record<string, Record<string, Operation>>;
}

/**
 * The routes a fastify app has, as "METHOD /pattern" (HEAD left out: fastify adds one for every GET), read
 * from `printRoutes({ commonPrefix: false })`: a tree whose lines are `<indent>├── <segment> (METHODS)`,
 * each segment continuing its parent's path.
 */
function routesOf(tree: string): string[] {
  const stack: string[] = [];
  const routes: string[] = [];
  for (const line of tree.split("\n")) {
    const m = /^((?:[│ ] {3})*)[├└]── (\S+)(?: \(([A-Z, ]+)\))?$/.exec(line.trimEnd());
    if (!m) continue;
    stack.length = m[1]!.length / 4;
    // A wildcard under a static route prints as `*` below `/ui` for the route `/ui/*`.
    stack.push(m[2] === "*" && !stack.join("").endsWith("/") ? "/*" : m[2]!);
    for (const method of m[3]?.split(", ") ?? []) if (method !== "HEAD") routes.push(`${method} ${stack.join("")}`);
  }
  return routes.sort();
}

/** Every operation of the document, as "METHOD /path". */
function operationsOf(doc: Document): string[] {
  return Object.entries(doc.paths)
    .flatMap(([path, item]) => Object.keys(item).flatMap((m) => (METHODS.includes(m) ? [`${m.toUpperCase()} ${path}`] : [])))
    .sort();
}

/** The routes docs/API.md's Routes table lists, one a row: "| `METHOD /path` | scope | answer |". */
function routesTableOfApiMd(): string[] {
  return [...API_MD.matchAll(/^\| `([A-Z]+) (\/[^`\s]*)` \|/gm)].map((m) => `${m[1]} ${m[2]}`).sort();
}

/** Every route docs/API.md names as "`METHOD /path`" (a `[?query]` or `?query` after the path left out). */
function routesInApiMd(): string[] {
  const found = [...API_MD.matchAll(/`(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) (\/[^`\s]*)`/g)].map(
    (m) => `${m[1]} ${m[2]!.replace(/\[?\?.*$/, "")}`,
  );
  return [...new Set(found)].sort();
}

const toDocKey = (key: string) => {
  const [method, pattern] = key.split(" ") as [string, string];
  return `${method} ${openApiPath(pattern)}`;
};

describeWithDatabase("GET /openapi.json", () => {
  // Authentication on: the document must be open anyway.
  const t = useTestServer("openapi", { authTokens: { [TOKEN]: { "*": ["admin"] } } });

  const fetchDocument = async (): Promise<Document> => {
    const res = await http<Document>(t.base, "GET", "/openapi.json");
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    return res.body;
  };

  it("is an OpenAPI 3 document, open without a token while other routes need one", async () => {
    const doc = await fetchDocument();
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(doc.info).toMatchObject({ title: "tablemq", version: VERSION });
    expect(doc.components?.securitySchemes?.bearerAuth).toMatchObject({ type: "http", scheme: "bearer" });
    // The error body, once, that every operation's `default` answer refers to.
    expect(doc.components?.responses?.Error).toMatchObject({ content: { "application/json": { schema: { required: ["error"] } } } });
    expect(doc.paths["/healthz"]!.get!.responses!.default).toEqual({ $ref: "#/components/responses/Error" });
    expect((await http(t.base, "GET", "/v1/tables")).status).toBe(401);
    expect((await http(t.base, "HEAD", "/openapi.json")).status).toBe(200);
  });

  it("has every route the server has, and ROUTE_SCOPES lists exactly those", async () => {
    const doc = await fetchDocument();
    const appRoutes = routesOf(t.server.app.printRoutes({ commonPrefix: false }));
    expect(appRoutes.length).toBeGreaterThan(20); // the tree was read
    expect(appRoutes).toContain("GET /openapi.json");
    // ROUTE_SCOPES names every route (an unlisted one would need admin on "*") and no other.
    expect(Object.keys(ROUTE_SCOPES).sort()).toEqual(appRoutes);
    for (const key of appRoutes) {
      const [method, url] = key.split(" ") as [string, string];
      expect(t.server.app.hasRoute({ method, url }), key).toBe(true);
    }
    // fastify's `:param` is OpenAPI's `{param}`.
    expect(operationsOf(doc)).toEqual(appRoutes.map(toDocKey).sort());
  });

  it("gives each operation a declared tag, a summary, its scope from ROUTE_SCOPES and its answers", async () => {
    const doc = await fetchDocument();
    const tags = new Set(doc.tags?.map((tag) => tag.name));
    for (const [key, requirement] of Object.entries(ROUTE_SCOPES)) {
      const [method, path] = toDocKey(key).split(" ") as [string, string];
      const op = doc.paths[path]?.[method.toLowerCase()];
      expect(op, key).toBeDefined();
      expect(op!.tags?.length, key).toBe(1);
      expect(tags.has(op!.tags![0]!), `${key}: tag ${op!.tags![0]} is declared`).toBe(true);
      expect(op!.summary, key).toBeTruthy();
      expect(op!["x-tablemq-scope"], key).toEqual(requirement);
      expect(op!.security, key).toEqual(
        requirement.kind === "open" ? [] : requirement.kind === "server" ? [{}, { bearerAuth: [] }] : [{ bearerAuth: [] }],
      );
      const statuses = Object.keys(op!.responses ?? {});
      expect(
        statuses.some((s) => /^(2\d\d|3\d\d|101)$/.test(s)),
        `${key} documents its answer`,
      ).toBe(true);
      expect(statuses, key).toContain("default"); // the error body
    }
    // A table's options may be left out.
    expect(doc.paths["/v1/tables/{table}"]!.put!.requestBody?.required).toBe(false);
    expect(doc.paths["/v1/tables/{table}/ack"]!.post!.requestBody?.required).toBe(true);
  });

  it("describes the WebSocket upgrade and its frames on the subscribe route", async () => {
    const op = (await fetchDocument()).paths["/v1/tables/{table}/subscribe"]!.get!;
    expect(op.description).toMatch(/upgrade: websocket/);
    expect(Object.keys(op.responses ?? {})).toContain("101");
    expect(Object.keys(op["x-tablemq-websocket"]!.clientFrames).sort()).toEqual(Object.keys(ClientFrames).sort());
    expect(Object.keys(op["x-tablemq-websocket"]!.serverFrames).sort()).toEqual(Object.keys(ServerFrames).sort());
  });

  it("agrees with docs/API.md", async () => {
    const operations = operationsOf(await fetchDocument());
    // The Routes table lists each operation once, and nothing else.
    expect(routesTableOfApiMd(), "docs/API.md's Routes table").toEqual(operations);
    const unknown = routesInApiMd().filter((route) => !operations.includes(route));
    expect(unknown, "routes docs/API.md lists that the server does not have").toEqual([]);
  });
});
