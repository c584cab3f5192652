import { TableNotFoundError } from "../errors.js";
import type { TableAnswer } from "../wire.js";
import type { ServerContext } from "./context.js";

type Describing = Pick<ServerContext, "engine" | "webhooks">;

/** A table as GET /v1/tables/{table} shows it: the engine's description plus the health of its webhooks. */
export async function describeTable(ctx: Describing, table: string): Promise<TableAnswer> {
  return { ...(await (await ctx.engine.table(table)).describe()), webhooks: ctx.webhooks.summaries(table) };
}

/** Several tables described (GET /v1/tables, the live feed); one dropped meanwhile is left out rather than failing them all. */
export async function describeTables(ctx: Describing, names: readonly string[]): Promise<TableAnswer[]> {
  const described = await Promise.allSettled(names.map((t) => describeTable(ctx, t)));
  const failed = described.find((d) => d.status === "rejected" && !(d.reason instanceof TableNotFoundError));
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return described.flatMap((d) => (d.status === "fulfilled" ? [d.value] : []));
}
