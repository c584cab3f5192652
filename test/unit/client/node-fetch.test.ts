import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpTransport } from "../../../src/client/http.js";
import { nodeFetch } from "../../../src/client/node-fetch.js";

/** The client's default transport (Node's http with keep-alive) against a real local server. */
describe("nodeFetch", () => {
  const seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string; socket: number }> = [];
  const sockets = new Map<object, number>();
  let base = "";
  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (body += c));
    req.on("end", () => {
      if (!sockets.has(req.socket)) sockets.set(req.socket, sockets.size);
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body, socket: sockets.get(req.socket)! });
      if (req.url === "/slow") return void setTimeout(() => res.end("{}"), 2_000);
      if (req.url === "/busy") {
        res.writeHead(429, { "content-type": "application/json", "retry-after": "2" });
        return void res.end('{"error":{"code":"overloaded","message":"later"}}');
      }
      res.writeHead(201, { "content-type": "application/json", "x-two": ["a", "b"] });
      res.end(JSON.stringify({ echo: body === "" ? null : JSON.parse(body) }));
    });
  });
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it("sends method, headers and a UTF-8 body with its byte length; answers status, text and headers", async () => {
    const f = nodeFetch();
    const body = JSON.stringify({ s: "é ✓ 😀" });
    const res = await f(`${base}/v1/x?y=1`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer t" },
      body,
    });
    expect(res.status).toBe(201);
    expect(JSON.parse(await res.text())).toEqual({ echo: { s: "é ✓ 😀" } });
    expect(res.headers.get("Content-Type")).toBe("application/json");
    expect(res.headers.get("x-two")).toBe("a, b");
    expect(res.headers.get("missing")).toBeNull();
    const req = seen.at(-1)!;
    expect(req).toMatchObject({ method: "POST", url: "/v1/x?y=1", body });
    expect(req.headers["content-length"]).toBe(String(Buffer.byteLength(body)));
    expect(req.headers.authorization).toBe("Bearer t");
  });

  it("keeps the connection alive: sequential requests share one socket", async () => {
    const f = nodeFetch();
    const before = sockets.size;
    for (let i = 0; i < 3; i++) await (await f(`${base}/k`, { method: "GET", headers: {} })).text();
    expect(sockets.size).toBe(before + 1);
    expect(new Set(seen.slice(-3).map((s) => s.socket)).size).toBe(1);
  });

  it("through HttpTransport: error bodies, retry-after, timeouts and refused connections become TablemqErrors", async () => {
    const t = new HttpTransport({ url: base, timeoutMs: 200 });
    expect((await t.request("POST", "/ok", { a: 1 })).body).toEqual({ echo: { a: 1 } });
    await expect(t.request("GET", "/busy")).rejects.toMatchObject({ status: 429, code: "overloaded", retryAfterMs: 2_000 });
    await expect(t.request("GET", "/slow")).rejects.toMatchObject({ status: 0, code: "timeout" });
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const err = await new HttpTransport({ url: `http://127.0.0.1:${port}` }).request("GET", "/v1/tables").catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 0, code: "unavailable" });
    expect((err as Error).message).toContain("ECONNREFUSED");
  });
});
