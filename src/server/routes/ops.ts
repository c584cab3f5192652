import type { FastifyInstance } from "fastify";
import type { ServerContext } from "../context.js";

/** /healthz (the process runs), /readyz (database reachable, engine open), /metrics (Prometheus). */
export function opsRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get("/healthz", async () => ({ status: "ok" }));

  app.get("/readyz", async (_req, reply) => {
    const reason = ctx.state.shuttingDown
      ? "shutting down"
      : !ctx.engine.isOpen
        ? "engine not open"
        : !(await ctx.store.ping())
          ? "database unreachable"
          : undefined;
    if (reason) return reply.code(503).send({ error: { code: "unavailable", message: reason } });
    // Several nodes: how this one hears of the others' rows (bus, or polling while the bus is off or down).
    return ctx.cluster ? { status: "ready", cluster: ctx.cluster.view() } : { status: "ready" };
  });

  app.get("/metrics", async (_req, reply) => {
    const body = await ctx.metrics.registry.metrics();
    return reply.header("content-type", ctx.metrics.registry.contentType).send(body);
  });
}
