/** The message states as SQL, shared by every SQL store's describeTable and browsing. */
import { sql, type Kysely, type RawBuilder } from "kysely";
import type { MessageState, SweepQuery, SweepResult, TableStats } from "./types.js";

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

/**
 * Several tables looked at in one UNION ALL (MessageStore.sweep): each one's oldest ack time, and where asked
 * whether an unacked row is due at `now` (ns). `MIN(time_acked)` is one dive into poller_idx; the due check
 * stops at the first due row (a table with no due row and many future ones is scanned, as a poll would be).
 */
export async function sweepTables(
  db: Kysely<any>,
  queries: readonly SweepQuery[],
  now: bigint,
  ref: (name: string) => RawBuilder<unknown>,
  toMs: (v: unknown) => number,
): Promise<Map<string, SweepResult>> {
  const out = new Map<string, SweepResult>();
  if (queries.length === 0) return out;
  const parts = queries.map(({ table, due }) => {
    const t = ref(table);
    const dueNow = due ? sql`(SELECT 1 FROM ${t} WHERE time_acked IS NULL AND time_next <= ${now} LIMIT 1)` : sql`NULL`;
    return sql`SELECT ${table} AS ${sql.ref("name")}, (SELECT MIN(time_acked) FROM ${t} WHERE time_acked IS NOT NULL) AS ${sql.ref("oldest")}, ${dueNow} AS ${sql.ref("due")}`;
  });
  const { rows } = await sql<Record<string, unknown>>`${sql.join(parts, sql` UNION ALL `)}`.execute(db);
  const asked = new Set(queries.filter((q) => q.due).map((q) => q.table));
  for (const r of rows) {
    const name = String(r.name);
    const result: SweepResult = asked.has(name) ? { due: r.due !== null && r.due !== undefined } : {};
    if (r.oldest !== null && r.oldest !== undefined) result.oldestAck = toMs(r.oldest);
    out.set(name, result);
  }
  return out;
}
