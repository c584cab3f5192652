import Fastify from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { nodeRoutes, type NodeRouteDeps } from "../../../src/server/routes/nodes.js";
import type { NodesAnswer } from "../../../src/wire.js";
import type { NodeRecord } from "../../../src/store/cluster-types.js";

const T0 = 1_700_000_000_000;
const self = { id: "me", url: "http://me.test:8080", version: "1.2.3", startedAt: T0, heartbeatAt: T0 + 500, redis: false };
const peer = (id: string, slot: number, over: Partial<NodeRecord> = {}): NodeRecord => ({
  id,
  slot,
  url: `http://${id}.test:8080`,
  version: "1.2.3",
  startedAt: T0 - 1_000,
  heartbeatAt: T0 + 400,
  redis: true,
  ...over,
});

const apps: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

async function get(deps: NodeRouteDeps): Promise<{ status: number; body: NodesAnswer }> {
  const app = Fastify();
  apps.push(app);
  nodeRoutes(app, deps);
  const res = await app.inject({ method: "GET", url: "/v1/nodes" });
  return { status: res.statusCode, body: res.json() };
}

describe("GET /v1/nodes", () => {
  it("lists this node alone, as the server describes it, without membership", async () => {
    const { status, body } = await get({ membership: () => undefined, self: () => self });
    expect(status).toBe(200);
    expect(body).toEqual({ nodes: [{ ...self, self: true }] });
  });

  it("lists every live node, this one first and marked self, its record as membership has it", async () => {
    const mine = peer("me", 1, { url: "http://me.test:8080", startedAt: T0, heartbeatAt: T0 + 450, redis: true });
    const { body } = await get({ membership: () => [peer("b", 0), mine, peer("c", 2, { url: null })], self: () => self });
    expect(body.nodes).toEqual([
      { id: "me", url: "http://me.test:8080", version: "1.2.3", startedAt: T0, heartbeatAt: T0 + 450, self: true, redis: true },
      { id: "b", url: "http://b.test:8080", version: "1.2.3", startedAt: T0 - 1_000, heartbeatAt: T0 + 400, self: false, redis: true },
      { id: "c", url: null, version: "1.2.3", startedAt: T0 - 1_000, heartbeatAt: T0 + 400, self: false, redis: true },
    ]);
    expect(JSON.stringify(body)).not.toContain("slot");
  });

  it("lists this node even before membership lists it (not joined yet)", async () => {
    const { body } = await get({ membership: () => [peer("b", 0)], self: () => self });
    expect(body.nodes.map((n) => [n.id, n.self])).toEqual([
      ["me", true],
      ["b", false],
    ]);
  });

  it("reads the nodes at each request", async () => {
    let nodes: NodeRecord[] = [peer("me", 0)];
    const app = Fastify();
    apps.push(app);
    nodeRoutes(app, { membership: () => nodes, self: () => self });
    expect((await app.inject({ url: "/v1/nodes" })).json().nodes).toHaveLength(1);
    nodes = [peer("me", 0), peer("b", 1)];
    expect((await app.inject({ url: "/v1/nodes" })).json().nodes).toHaveLength(2);
  });
});
