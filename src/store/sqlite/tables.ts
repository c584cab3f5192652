/**
 * The embedded store's tables: message tables, their options, and discovery.
 *
 * SQLite has no table COMMENT, so each message table's options (the same `vitess_message,...` text a MySQL
 * table's COMMENT holds) are kept in `tablemq_tables`, written in the transaction that creates, alters or
 * drops the table: a table is a message table exactly when it has a row there. A message table has
 * Vitess's six columns; `id` holds the id's key (keys.ts), and the poller's index is Vitess's
 * (time_acked, priority, time_next), to which SQLite adds the rowid (the key): ties come out oldest first.
 */
import { sql, type Kysely } from "kysely";
import { formatComment, parseComment, type TableOptions } from "../../options.js";
import { deadLetterTableOf } from "../../model/limits.js";
import { countTables, stateCounts, statsOf, sweepTables } from "../states.js";
import type { DiscoveredTable, SweepQuery, SweepResult, TableStats } from "../types.js";
import { ns, nsToMs, num, tableRef } from "./keys.js";

export const TABLES_TABLE = "tablemq_tables";

/** Made once per store (IF NOT EXISTS): the options of each message table. */
export const createTablesTable = sql`CREATE TABLE IF NOT EXISTS ${sql.table(TABLES_TABLE)} (
  name    TEXT PRIMARY KEY,
  options TEXT NOT NULL
) WITHOUT ROWID`;

export async function discoverTables(db: Kysely<any>): Promise<DiscoveredTable[]> {
  const { rows } = await sql<{ name: string; options: string }>`
    SELECT m.name, m.options FROM ${sql.table(TABLES_TABLE)} AS m
    JOIN sqlite_schema AS s ON s.type = 'table' AND s.name = m.name
    ORDER BY m.name`.execute(db);
  return rows.map((r) => ({ name: r.name, options: parseComment(r.options) }));
}

/** Creates the table and its options row; false (and no change) if a table of that name exists. */
export function createTable(db: Kysely<any>, table: string, options: TableOptions): Promise<boolean> {
  const ref = tableRef(table);
  return db.transaction().execute(async (trx) => {
    if (await exists(trx, table)) return false;
    await sql`CREATE TABLE ${ref} (
      id         INTEGER PRIMARY KEY,
      priority   INTEGER NOT NULL DEFAULT 50,
      epoch      INTEGER NOT NULL DEFAULT 0,
      time_next  INTEGER DEFAULT 0,
      time_acked INTEGER DEFAULT NULL,
      message    TEXT CHECK (message IS NULL OR json_valid(message))
    )`.execute(trx);
    await sql`CREATE INDEX ${sql.id(`${table}_poller_idx`)} ON ${ref} (time_acked, priority, time_next)`.execute(trx);
    // REPLACE: a table dropped behind the server's back left its options row.
    await sql`INSERT OR REPLACE INTO ${sql.table(TABLES_TABLE)} (name, options) VALUES (${table}, ${formatComment(options)})`.execute(trx);
    return true;
  });
}

/** Any table (a message table, a dead-letter table, one of tablemq's own) of that name. */
async function exists(db: Kysely<any>, table: string): Promise<boolean> {
  const { rows } = await sql`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ${table}`.execute(db);
  return rows.length > 0;
}

/** New options; false when it is not a message table. */
export async function alterTableOptions(db: Kysely<any>, table: string, options: TableOptions): Promise<boolean> {
  const result = await sql`UPDATE ${sql.table(TABLES_TABLE)} SET options = ${formatComment(options)} WHERE name = ${table}`.execute(db);
  return Number(result.numAffectedRows ?? 0n) > 0;
}

/** Drops the message table, its options and its dead letters; false if it was not a message table. */
export function dropTable(db: Kysely<any>, table: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const result = await sql`DELETE FROM ${sql.table(TABLES_TABLE)} WHERE name = ${table}`.execute(trx);
    if (Number(result.numAffectedRows ?? 0n) === 0) return false;
    await sql`DROP TABLE IF EXISTS ${tableRef(table)}`.execute(trx);
    await sql`DROP TABLE IF EXISTS ${sql.table(deadLetterTableOf(table))}`.execute(trx);
    return true;
  });
}

/** describeTable for several tables in one UNION ALL, with each one's dead letters when its `<table>_dlq` exists. */
export async function describeTables(
  db: Kysely<any>,
  tables: readonly string[],
  nowMs: number,
): Promise<Map<string, TableStats & { dead: number }>> {
  if (tables.length === 0) return new Map();
  const dlqs = tables.map(deadLetterTableOf);
  const { rows: found } = await sql<{ name: string }>`
    SELECT name FROM sqlite_schema WHERE type = 'table' AND name IN (${sql.join(dlqs)})`.execute(db);
  const existing = new Set(found.map((r) => r.name));
  const deadLetters = (t: string) => (existing.has(deadLetterTableOf(t)) ? sql.table(deadLetterTableOf(t)) : undefined);
  return countTables(db, tables, ns(nowMs, "now"), { table: tableRef, deadLetters }, num);
}

/** MessageStore.sweep: one UNION ALL over the tables (../states.ts). */
export function sweep(db: Kysely<any>, queries: readonly SweepQuery[], nowMs: number): Promise<Map<string, SweepResult>> {
  return sweepTables(db, queries, ns(nowMs, "now"), tableRef, (v) => nsToMs(v as bigint));
}

/** Row counts by state, in one scan (the rules of ../states.ts, as on MySQL). */
export async function describeTable(db: Kysely<any>, table: string, nowMs: number): Promise<TableStats> {
  const { rows } = await sql<Record<string, unknown>>`SELECT ${stateCounts(ns(nowMs, "now"))} FROM ${tableRef(table)}`.execute(db);
  return statsOf(rows[0], num);
}
