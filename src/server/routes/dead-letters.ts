import type { FastifyInstance } from "fastify";
import type { ServerContext } from "../context.js";
import { ApiError } from "../errors.js";
import { type DeadLetterPageAnswer, DeadQuery, RedriveBody, type RedriveAnswer, TableParams } from "../../wire.js";

/** Dead letters (messages out of attempts): list them, newest first, and redrive them. */
export function deadLetterRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { engine, config } = ctx;

  app.get<{ Params: TableParams; Querystring: { limit?: string; cursor?: string } }>(
    "/v1/tables/:table/dead",
    { schema: { params: TableParams, querystring: DeadQuery } },
    async (req, reply) => {
      const limit = req.query.limit === undefined ? 100 : Number(req.query.limit);
      const page = await (await engine.table(req.params.table)).listDead(limit, req.query.cursor);
      // Payloads are stored JSON text: spliced in as they are, like deliveries, never re-serialised.
      const messages = page.messages.map(({ payload, ...m }) => {
        const fields: Omit<DeadLetterPageAnswer["messages"][number], "payload"> = m;
        return `${JSON.stringify(fields).slice(0, -1)},"payload":${payload}}`;
      });
      const next = page.next === undefined ? "" : `,"next":${JSON.stringify(page.next)}`;
      return reply.type("application/json; charset=utf-8").send(`{"messages":[${messages.join(",")}]${next}}`);
    },
  );

  app.post<{ Params: TableParams; Body: RedriveBody }>(
    "/v1/tables/:table/redrive",
    { schema: { params: TableParams, body: RedriveBody } },
    async (req) => {
      const { ids, all } = req.body;
      if ((ids === undefined) === (all !== true)) {
        throw new ApiError(400, "validation_failed", 'body: give either "ids" or "all": true');
      }
      if (ids && ids.length > config.maxBatch) {
        throw new ApiError(413, "payload_too_large", `ids: at most ${config.maxBatch} per request, got ${ids.length}`);
      }
      const result = await (await engine.table(req.params.table)).redrive(ids);
      return { redriven: result.redriven.length, missing: result.missing, conflicts: result.conflicts } satisfies RedriveAnswer;
    },
  );
}
