import { noBodyIsEmpty } from "../body.js";
import type { FastifyInstance } from "fastify";
import { TableNotFoundError } from "../../errors.js";
import type { TableOptions } from "../../options.js";
import { canSeeTable } from "../auth.js";
import type { ServerContext } from "../context.js";
import { ApiError } from "../errors.js";
import { type TableAnswer, type TableDroppedAnswer, type TableListAnswer, TableOptionsBody, TableParams } from "../../wire.js";

/** Table admin: PUT (create or change options), GET one or all, DELETE. */
export function tableRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { engine, webhooks } = ctx;
  // The engine's description plus the health of the table's webhooks.
  const describe = async (table: string): Promise<TableAnswer> => ({
    ...(await (await engine.table(table)).describe()),
    webhooks: webhooks.summaries(table),
  });

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

  app.get("/v1/tables", async (req) => {
    // With authentication on, only the tables the token has a scope on.
    const names = engine.tableNames().filter((t) => canSeeTable(req, t));
    const described = await Promise.allSettled(names.map((t) => describe(t)));
    const failed = described.find((d) => d.status === "rejected" && !(d.reason instanceof TableNotFoundError));
    if (failed) throw (failed as PromiseRejectedResult).reason;
    // A table dropped since the last refresh is left out rather than failing the whole list.
    return { tables: described.flatMap((d) => (d.status === "fulfilled" ? [d.value] : [])) } satisfies TableListAnswer;
  });

  app.get<{ Params: TableParams }>("/v1/tables/:table", { schema: { params: TableParams } }, async (req) => describe(req.params.table));

  app.delete<{ Params: TableParams }>("/v1/tables/:table", { schema: { params: TableParams } }, async (req) => {
    if (!(await engine.dropTable(req.params.table))) {
      throw new ApiError(404, "table_not_found", `table ${JSON.stringify(req.params.table)} is not a message table`);
    }
    return { name: req.params.table, dropped: true } satisfies TableDroppedAnswer;
  });
}
