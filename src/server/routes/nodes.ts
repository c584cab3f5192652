import type { FastifyInstance } from "fastify";
import type { NodeRecord } from "../../store/cluster-types.js";
import type { NodeAnswer, NodesAnswer } from "../../wire.js";

/** This node, as the server describes it (its slot is not shown). */
export type SelfNode = Omit<NodeRecord, "slot">;

export interface NodeRouteDeps {
  /** Every live node, this one included (Membership.nodes()); undefined when the server runs alone. */
  membership: () => NodeRecord[] | undefined;
  /**
   * This node. Without membership it is the whole list; with it, it tells which entry is `self`, and is
   * listed first even if membership does not list it (yet).
   */
  self: () => SelfNode;
}

/** GET /v1/nodes. */
export function nodeRoutes(app: FastifyInstance, deps: NodeRouteDeps): void {
  app.get("/v1/nodes", async () => ({ nodes: listNodes(deps) }) satisfies NodesAnswer);
}

function listNodes(deps: NodeRouteDeps): NodeAnswer[] {
  const self = deps.self();
  const nodes = deps.membership() ?? [];
  const fromMembership = nodes.find((n) => n.id === self.id);
  const others = nodes.filter((n) => n.id !== self.id);
  return [{ ...answer(fromMembership ?? self), self: true }, ...others.map((n) => ({ ...answer(n), self: false }))];
}

function answer(n: SelfNode): Omit<NodeAnswer, "self"> {
  return {
    id: n.id,
    url: n.url,
    version: n.version,
    startedAt: Math.floor(n.startedAt),
    heartbeatAt: Math.floor(n.heartbeatAt),
    redis: n.redis,
  };
}
