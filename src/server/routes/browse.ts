import type { FastifyInstance } from "fastify";
import type { BrowsedMessage } from "../../store/types.js";
import type { ServerContext } from "../context.js";
import { BrowseQuery, type BrowsedMessageAnswer, MessageParams, TableParams } from "../../wire.js";

const DEFAULT_LIMIT = 100;

/**
 * Browsing: a table's unacked messages, a page at a time or one by id, read without delivering them (the
 * dead-letter list's counterpart for the live table). Nothing is leased or counted: a subscriber gets the
 * same messages, with the same epochs, as if nobody had looked.
 */
export function browseRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { engine } = ctx;

  app.get<{ Params: TableParams; Querystring: BrowseQuery }>(
    "/v1/tables/:table/messages",
    { schema: { params: TableParams, querystring: BrowseQuery } },
    async (req, reply) => {
      const { state, order = "next", limit, cursor } = req.query;
      const page = await (
        await engine.table(req.params.table)
      ).browse({
        order,
        limit: limit === undefined ? DEFAULT_LIMIT : Number(limit),
        ...(state === undefined ? {} : { state }),
        ...(cursor === undefined ? {} : { cursor }),
      });
      const next = page.next === undefined ? "" : `,"next":${JSON.stringify(page.next)}`;
      return reply.type("application/json; charset=utf-8").send(`{"messages":[${page.messages.map(browsedText).join(",")}]${next}}`);
    },
  );

  app.get<{ Params: MessageParams }>("/v1/tables/:table/messages/:id", { schema: { params: MessageParams } }, async (req, reply) => {
    const message = await (await engine.table(req.params.table)).message(req.params.id);
    return reply.type("application/json; charset=utf-8").send(browsedText(message));
  });
}

/**
 * A browsed message as JSON text (wire.ts BrowsedMessageAnswer): its payload is stored JSON text, spliced in
 * as the dead-letter list and deliveries do (src/receipts.ts deliveredText), never parsed and re-serialised.
 */
function browsedText({ payload, ...m }: BrowsedMessage): string {
  const fields: Omit<BrowsedMessageAnswer, "payload"> = m;
  return `${JSON.stringify(fields).slice(0, -1)},"payload":${payload}}`;
}
