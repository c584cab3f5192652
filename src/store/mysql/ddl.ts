/**
 * Table-level statements: discovery, create, alter options, drop, describe.
 *
 * The table shape is documented in schema/message_table.sql; keep the two in agreement.
 */
import { sql, type Kysely, type RawBuilder } from "kysely";
import { formatComment, isMessageComment, parseComment, type TableOptions } from "../../options.js";
import type { DiscoveredTable, SweepQuery, SweepResult, TableStats } from "../types.js";
import { deadLetterTableOf, MAX_DEAD_LETTER_BASE } from "../../model/limits.js";
import { countTables, stateCounts, statsOf, sweepTables } from "../states.js";
import type { TablemqDatabase } from "./schema.js";
import { TableNotFoundError } from "../../errors.js";
import { currentDatabase, nsToMs, nsValue, tableRef, toNumber, validateIdentifier } from "./values.js";

/** MySQL/MariaDB error numbers we turn into return values. */
const ER_TABLE_EXISTS_ERROR = 1050;
export const ER_NO_SUCH_TABLE = 1146;
const ER_BAD_TABLE_ERROR = 1051;

/** A message table whose comment says vitess_message but which tablemq cannot serve. */
export interface SkippedTable {
  name: string;
  reason: string;
}

export interface Discovery {
  tables: DiscoveredTable[];
  skipped: SkippedTable[];
}

/**
 * Lists the message tables of the current database. A table whose comment marks it as a message table
 * but cannot be used (malformed option, or a name outside the identifier pattern) is returned in
 * `skipped` instead of failing discovery: one bad table must not take every queue down.
 */
export async function discoverMessageTables(db: Kysely<any>): Promise<Discovery> {
  // The LIKE only narrows the scan; isMessageComment() below is the real test.
  const rows = await (db as Kysely<TablemqDatabase>)
    .selectFrom("information_schema.tables")
    .select(["table_name as name", "table_comment as comment"])
    .where("table_schema", "=", currentDatabase)
    .where("table_type", "=", "BASE TABLE")
    .where("table_comment", "like", "%vitess_message%")
    .orderBy("table_name")
    .execute();
  const discovery: Discovery = { tables: [], skipped: [] };
  for (const { name, comment } of rows) {
    if (!isMessageComment(comment)) continue;
    try {
      validateIdentifier(name);
      discovery.tables.push({ name, options: parseComment(comment ?? "") });
    } catch (err) {
      discovery.skipped.push({ name, reason: (err as Error).message });
    }
  }
  return discovery;
}

const COMMENT_CHARS = /^[a-z0-9_=.,]+$/;

/**
 * The options as a COMMENT string literal. DDL cannot take bound parameters (not with server-side
 * prepared statements, anyway), so the comment is inlined as a literal; it is checked to contain only
 * characters formatComment() produces, so no quoting or escaping question can arise.
 */
export function commentLiteral(options: TableOptions): RawBuilder<unknown> {
  const comment = formatComment(options);
  if (!COMMENT_CHARS.test(comment)) {
    throw new Error(`refusing table comment with unexpected characters: ${JSON.stringify(comment)}`);
  }
  return sql.lit(comment);
}

export function createTableStatement(table: string, options: TableOptions): RawBuilder<unknown> {
  return sql`CREATE TABLE ${tableRef(table)} (
    id         BIGINT UNSIGNED NOT NULL,
    priority   TINYINT UNSIGNED NOT NULL DEFAULT 50,
    epoch      BIGINT NOT NULL DEFAULT 0,
    time_next  BIGINT DEFAULT 0,
    time_acked BIGINT DEFAULT NULL,
    message    JSON,
    PRIMARY KEY (id),
    INDEX poller_idx (time_acked, priority, time_next)
  ) COMMENT ${commentLiteral(options)}`;
}

/** Creates the table; false (and no change) if it already exists. */
export async function createTable(db: Kysely<any>, table: string, options: TableOptions): Promise<boolean> {
  try {
    await createTableStatement(table, options).execute(db);
    return true;
  } catch (err) {
    if (errno(err) === ER_TABLE_EXISTS_ERROR) return false;
    throw err;
  }
}

export async function alterTableOptions(db: Kysely<any>, table: string, options: TableOptions): Promise<void> {
  await sql`ALTER TABLE ${tableRef(table)} COMMENT = ${commentLiteral(options)}`.execute(db);
}

/**
 * Drops the table; false if it did not exist. A plain DROP TABLE (not IF EXISTS) tells the two apart
 * atomically: IF EXISTS only leaves a warning, which Kysely does not surface.
 */
export async function dropTable(db: Kysely<any>, table: string): Promise<boolean> {
  try {
    await sql`DROP TABLE ${tableRef(table)}`.execute(db);
    return true;
  } catch (err) {
    if (errno(err) === ER_BAD_TABLE_ERROR) return false;
    throw err;
  }
}

/** Row counts by state, in one scan. (The aliases are quoted: DELAYED is a reserved word.) */
export async function describeTable(db: Kysely<any>, table: string, nowMs: number): Promise<TableStats> {
  // The states browse.ts shows.
  const { rows } = await sql<Record<string, unknown>>`SELECT ${stateCounts(nsValue(nowMs, "now"))} FROM ${tableRef(table)}`.execute(db);
  return statsOf(rows[0], toNumber);
}

/**
 * describeTable for several tables in one UNION ALL, with each one's dead letters (when its `<table>_dlq`
 * exists: one look at information_schema first).
 */
export async function describeTables(
  db: Kysely<any>,
  tables: readonly string[],
  nowMs: number,
): Promise<Map<string, TableStats & { dead: number }>> {
  if (tables.length === 0) return new Map();
  const dlqs = tables.filter((t) => t.length <= MAX_DEAD_LETTER_BASE).map(deadLetterTableOf);
  const existing = new Set<string>();
  if (dlqs.length > 0) {
    const { rows } = await sql<{ n: unknown }>`
      SELECT TABLE_NAME AS n FROM information_schema.TABLES
      WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (${sql.join(dlqs)})`.execute(db);
    for (const r of rows) existing.add(String(r.n));
  }
  const deadLetters = (t: string) => {
    const dlq = t.length <= MAX_DEAD_LETTER_BASE ? deadLetterTableOf(t) : undefined;
    return dlq !== undefined && existing.has(dlq) ? tableRef(dlq) : undefined;
  };
  return countTables(db, tables, nsValue(nowMs, "now"), { table: tableRef, deadLetters }, toNumber);
}

/** MessageStore.sweep: one UNION ALL over the tables (states.ts). */
export function sweep(db: Kysely<any>, queries: readonly SweepQuery[], nowMs: number): Promise<Map<string, SweepResult>> {
  return sweepTables(db, queries, nsValue(nowMs, "now"), tableRef, (v) => nsToMs(v as string | number | bigint));
}

export function errno(err: unknown): number | undefined {
  return typeof err === "object" && err !== null && "errno" in err ? Number((err as { errno: unknown }).errno) : undefined;
}

/** onTable for a statement on several tables: the error names the one MySQL said is missing. */
export async function onTables<T>(tables: readonly string[], work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (errno(err) !== ER_NO_SUCH_TABLE) throw err;
    const named = /Table '[^'.]*\.([^']+)' doesn't exist/.exec(String((err as Error).message))?.[1];
    throw new TableNotFoundError(named !== undefined && tables.includes(named) ? named : (tables[0] ?? ""));
  }
}

/** A statement on a table that was dropped behind our back (or never made) fails as TableNotFoundError, not a SQL error. */
export async function onTable<T>(table: string, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (errno(err) === ER_NO_SUCH_TABLE) throw new TableNotFoundError(table);
    throw err;
  }
}

/** The options of message table `table` of the current database; TableNotFoundError when it is not one. */
export async function readTableOptions(db: Kysely<any>, table: string): Promise<TableOptions> {
  const row = await (db as Kysely<TablemqDatabase>)
    .selectFrom("information_schema.tables")
    .select("table_comment as comment")
    .where("table_schema", "=", currentDatabase)
    .where("table_name", "=", table)
    .executeTakeFirst();
  if (!isMessageComment(row?.comment)) throw new TableNotFoundError(table);
  return parseComment(row!.comment!);
}
