import type { FastifyInstance } from "fastify";
import type { ServerContext } from "../context.js";
import { type DeliverNowAnswer, type MessageDeletedAnswer, MessageParams, type PurgeAnswer, TableParams } from "../../wire.js";

/**
 * An operator's actions on a table's messages (the `admin` scope): make one due now, delete one, purge
 * them all. Dead letters have their own routes (dead-letters.ts).
 */
export function actionRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { engine } = ctx;

  app.post<{ Params: MessageParams }>("/v1/tables/:table/messages/:id/deliver", { schema: { params: MessageParams } }, async (req) => {
    await (await engine.table(req.params.table)).deliverNow(req.params.id);
    return { id: req.params.id, dueNow: true } satisfies DeliverNowAnswer;
  });

  app.delete<{ Params: MessageParams }>("/v1/tables/:table/messages/:id", { schema: { params: MessageParams } }, async (req) => {
    await (await engine.table(req.params.table)).deleteMessage(req.params.id);
    return { id: req.params.id, deleted: true } satisfies MessageDeletedAnswer;
  });

  app.post<{ Params: TableParams }>("/v1/tables/:table/purge", { schema: { params: TableParams } }, async (req) => {
    return { purged: await (await engine.table(req.params.table)).purge() } satisfies PurgeAnswer;
  });
}
