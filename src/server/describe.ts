import { TableNotFoundError } from "../errors.js";
import type { TableAnswer } from "../wire.js";
import type { ServerContext } from "./context.js";

type Describing = Pick<ServerContext, "engine" | "webhooks">;

/** Tables described in one statement: a listing's page, and the live feed in steps of it. */
export const DESCRIBE_CHUNK = 100;

/** A table as GET /v1/tables/{table} shows it: the engine's description plus the health of its webhooks. */
export async function describeTable(ctx: Describing, table: string): Promise<TableAnswer> {
  return { ...(await (await ctx.engine.table(table)).describe()), webhooks: ctx.webhooks.summaries(table) };
}

/**
 * Several tables described (GET /v1/tables, the live feed), DESCRIBE_CHUNK per statement, in the order
 * given. One dropped meanwhile is left out rather than failing them all.
 */
export async function describeTables(ctx: Describing, names: readonly string[]): Promise<TableAnswer[]> {
  const out: TableAnswer[] = [];
  for (let i = 0; i < names.length; i += DESCRIBE_CHUNK) {
    let chunk = names.slice(i, i + DESCRIBE_CHUNK);
    for (;;) {
      try {
        const described = await ctx.engine.describeTables(chunk);
        out.push(...described.map((d) => ({ ...d, webhooks: ctx.webhooks.summaries(d.name) })));
        break;
      } catch (err) {
        if (!(err instanceof TableNotFoundError) || !chunk.includes(err.table)) throw err;
        chunk = chunk.filter((t) => t !== err.table);
      }
    }
  }
  return out;
}
