import { noBodyIsEmpty } from "../body.js";
import type { FastifyInstance } from "fastify";
import type { TableOptions } from "../../options.js";
import { canSeeTable } from "../auth.js";
import type { ServerContext } from "../context.js";
import { describeTable, describeTables } from "../describe.js";
import { ApiError } from "../errors.js";
import {
  type TableAnswer,
  type TableDroppedAnswer,
  type TableListAnswer,
  TableListQuery,
  TableOptionsBody,
  TableParams,
} from "../../wire.js";

/** Tables on a page of GET /v1/tables when the request does not say. */
export const DEFAULT_LIST_LIMIT = 100;

/** Table admin: PUT (create or change options), GET one or all, DELETE. */
export function tableRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { engine, webhooks } = ctx;
  const describe = (table: string): Promise<TableAnswer> => describeTable(ctx, table);

  app.put<{ Params: TableParams; Body: Partial<TableOptions> }>(
    "/v1/tables/:table",
    {
      schema: { params: TableParams, body: TableOptionsBody },
      // Every option is optional: no body at all means the defaults (or no change).
      preValidation: noBodyIsEmpty,
    },
    async (req, reply) => {
      const { created } = await engine.ensureTable(req.params.table, req.body ?? {});
      return reply.code(created ? 201 : 200).send(await describe(req.params.table));
    },
  );

  // A page at a time, by name: with thousands of tables one answer (and one statement per table) would not do.
  app.get<{ Querystring: TableListQuery }>("/v1/tables", { schema: { querystring: TableListQuery } }, async (req) => {
    const limit = req.query.limit === undefined ? DEFAULT_LIST_LIMIT : Number(req.query.limit);
    const { cursor } = req.query;
    // With authentication on, only the tables the token has a scope on.
    const visible = engine.tableNames().filter((t) => (cursor === undefined || t > cursor) && canSeeTable(req, t));
    const names = visible.slice(0, limit);
    const next = visible.length > limit ? { next: names.at(-1)! } : {};
    if (req.query.stats === "false") {
      const tables = names.flatMap((name) => {
        const options = engine.optionsOf(name);
        return options ? [{ name, options, webhooks: webhooks.summaries(name) }] : [];
      });
      return { tables, ...next } satisfies TableListAnswer;
    }
    return { tables: await describeTables(ctx, names), ...next } satisfies TableListAnswer;
  });

  app.get<{ Params: TableParams }>("/v1/tables/:table", { schema: { params: TableParams } }, async (req) => describe(req.params.table));

  // Pause and resume: kept in the table's options (`paused`), so on every node and across restarts.
  for (const [op, paused] of [
    ["pause", true],
    ["resume", false],
  ] as const) {
    app.post<{ Params: TableParams }>(`/v1/tables/:table/${op}`, { schema: { params: TableParams } }, async (req) => {
      await engine.setPaused(req.params.table, paused);
      return describe(req.params.table);
    });
  }

  app.delete<{ Params: TableParams }>("/v1/tables/:table", { schema: { params: TableParams } }, async (req) => {
    if (!(await engine.dropTable(req.params.table))) {
      throw new ApiError(404, "table_not_found", `table ${JSON.stringify(req.params.table)} is not a message table`);
    }
    return { name: req.params.table, dropped: true } satisfies TableDroppedAnswer;
  });
}
