/** The message states as SQL, shared by every SQL store's describeTable and browsing. */
import { sql, type Kysely, type RawBuilder } from "kysely";
import type { MessageState, TableStats } from "./types.js";

/**
 * Each state's rule for an unacked row at `now` (ns), as each store's describeTable counts them: the one
 * definition of ready, delayed and in flight. A row whose time_next is NULL is in none.
 */
export function stateRules(now: bigint): Record<MessageState, RawBuilder<unknown>> {
  return {
    ready: sql`time_next <= ${now}`,
    delayed: sql`time_next > ${now} AND IFNULL(epoch, 0) = 0`,
    inFlight: sql`time_next > ${now} AND epoch > 0`,
  };
}

/** The SELECT list counting a table's rows by state at `now` (ns): `ready`, `delayed`, `inFlight`, `acked`. */
export function stateCounts(now: bigint): RawBuilder<unknown> {
  const rules = stateRules(now);
  return sql`
    SUM(CASE WHEN time_acked IS NULL AND ${rules.ready} THEN 1 ELSE 0 END) AS ${sql.ref("ready")},
    SUM(CASE WHEN time_acked IS NULL AND ${rules.delayed} THEN 1 ELSE 0 END) AS ${sql.ref("delayed")},
    SUM(CASE WHEN time_acked IS NULL AND ${rules.inFlight} THEN 1 ELSE 0 END) AS ${sql.ref("inFlight")},
    SUM(CASE WHEN time_acked IS NOT NULL THEN 1 ELSE 0 END) AS ${sql.ref("acked")}`;
}

/** A row of stateCounts as numbers (`toNumber`: the store's reading of its driver's values; NULL, an empty table's SUM, is 0). */
export function statsOf(row: Record<string, unknown> | undefined, toNumber: (v: unknown) => number): TableStats {
  return { ready: toNumber(row?.ready), delayed: toNumber(row?.delayed), inFlight: toNumber(row?.inFlight), acked: toNumber(row?.acked) };
}

/**
 * Several tables' stateCounts and dead letters in one UNION ALL (MessageStore.describeTables): `ref.table`
 * names a message table, `ref.deadLetters` its dead-letter table when that exists (else it has none).
 */
export async function countTables(
  db: Kysely<any>,
  tables: readonly string[],
  now: bigint,
  ref: { table(name: string): RawBuilder<unknown>; deadLetters(name: string): RawBuilder<unknown> | undefined },
  toNumber: (v: unknown) => number,
): Promise<Map<string, TableStats & { dead: number }>> {
  const out = new Map<string, TableStats & { dead: number }>();
  if (tables.length === 0) return out;
  const counts = stateCounts(now);
  const parts = tables.map((t) => {
    const dlq = ref.deadLetters(t);
    const dead = dlq ? sql`(SELECT COUNT(*) FROM ${dlq})` : sql`0`;
    return sql`SELECT ${t} AS ${sql.ref("name")}, ${counts}, ${dead} AS ${sql.ref("dead")} FROM ${ref.table(t)}`;
  });
  const { rows } = await sql<Record<string, unknown>>`${sql.join(parts, sql` UNION ALL `)}`.execute(db);
  for (const r of rows) out.set(String(r.name), { ...statsOf(r, toNumber), dead: toNumber(r.dead) });
  return out;
}
