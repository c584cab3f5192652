/**
 * A message table's form: what its columns, CHECK constraints and triggers allow the hot statements to
 * leave out. Both savings were measured with callgrind on MariaDB 10.11 (README "How it works"):
 *
 * - `hexPayload`: the INSERT sends each payload as a hex literal, X'…', not as a quoted string. MariaDB
 *   turns a quoted literal into an item whose name it converts to its system charset, and counts its
 *   characters, while lexing it byte by byte; a hex literal is decoded and stored as it is. The bytes
 *   stored are the same UTF-8 bytes only where the column keeps bytes unconverted: utf8mb4 text (MariaDB's
 *   JSON is LONGTEXT utf8mb4, whose CHECK still validates the JSON) or a binary string (Vitess's
 *   VARBINARY). Any other column (MySQL 8's native JSON, which refuses binary strings; latin1 text, which
 *   would take the UTF-8 bytes as latin1 characters) gets quoted strings, converted by the server.
 * - `uncheckedUpdates`: MariaDB evaluates every CHECK constraint of a row on each UPDATE, whichever
 *   columns it sets, so an ack re-validated each row's JSON payload. The UPDATEs tablemq runs set only
 *   time_next, time_acked and epoch, so a CHECK that cannot see those columns cannot change its verdict,
 *   and `SET STATEMENT check_constraint_checks=0 FOR UPDATE …` may skip them all. Only when no CHECK clause
 *   names one of those columns, no generated column could carry them into a CHECK, and no UPDATE trigger
 *   could write other columns; and only on MariaDB (the syntax and the variable are MariaDB's).
 *
 * A table whose form is not known (not yet discovered, or read before a change) gets PLAIN_FORM: quoted
 * strings and checked updates, which are right for any table.
 */
import { sql, type Kysely, type RawBuilder } from "kysely";
import { MAX_MESSAGE_ID } from "../../ids.js";
import type { TablemqDatabase } from "./schema.js";
import { currentDatabase, tableRef } from "./values.js";

export interface TableForm {
  hexPayload: boolean;
  uncheckedUpdates: boolean;
  /** The largest id the `id` column holds (a Vitess table may declare a signed BIGINT: 2^63 - 1). */
  maxId: bigint;
}

export const PLAIN_FORM: TableForm = Object.freeze({ hexPayload: false, uncheckedUpdates: false, maxId: MAX_MESSAGE_ID });

/** Largest values of the signed integer types (an unsigned one holds twice that plus one). */
const SIGNED_MAX: Record<string, bigint> = {
  tinyint: 2n ** 7n - 1n,
  smallint: 2n ** 15n - 1n,
  mediumint: 2n ** 23n - 1n,
  int: 2n ** 31n - 1n,
  integer: 2n ** 31n - 1n,
  bigint: 2n ** 63n - 1n,
};

/** The largest id a column of this type holds; MAX_MESSAGE_ID for a type that is not an integer. */
export function maxIdOf(dataType: string, columnType: string): bigint {
  const signed = SIGNED_MAX[dataType.toLowerCase()];
  if (signed === undefined) return MAX_MESSAGE_ID;
  return /unsigned/i.test(columnType) ? signed * 2n + 1n : signed;
}

/** The columns tablemq's UPDATEs set: a CHECK that names one of them is evaluated. */
const UPDATED_COLUMN = /\b(time_next|time_acked|epoch)\b/i;
const BINARY_TYPES = new Set(["binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"]);

interface ColumnRow {
  t: string;
  c: string;
  dataType: string;
  columnType: string;
  charset: string | null;
  generated: string | null;
}

/** The forms of the named tables of the current database (tables not found are left out). */
export async function readTableForms(db: Kysely<any>, tables: readonly string[]): Promise<Map<string, TableForm>> {
  const forms = new Map<string, TableForm>();
  if (tables.length === 0) return forms;
  const names = [...tables];
  const schema = db as Kysely<TablemqDatabase>;
  const columns: ColumnRow[] = await schema
    .selectFrom("information_schema.columns")
    .select([
      "table_name as t",
      "column_name as c",
      "data_type as dataType",
      "column_type as columnType",
      "character_set_name as charset",
      "generation_expression as generated",
    ])
    .where("table_schema", "=", currentDatabase)
    .where("table_name", "in", names)
    .execute();
  const { rows: version } = await sql<{ v: string }>`SELECT VERSION() AS v`.execute(db);
  const mariadb = /mariadb/i.test(version[0]?.v ?? "");
  const checked = new Set<string>(); // tables where an UPDATE must evaluate CHECKs
  if (mariadb) {
    const checks = await schema
      .selectFrom("information_schema.check_constraints")
      .select(["table_name as t", "check_clause as clause"])
      .where("constraint_schema", "=", currentDatabase)
      .where("table_name", "in", names)
      .execute();
    for (const { t, clause } of checks) if (UPDATED_COLUMN.test(clause)) checked.add(t);
    const triggers = await schema
      .selectFrom("information_schema.triggers")
      .select("event_object_table as t")
      .where("event_object_schema", "=", currentDatabase)
      .where("event_manipulation", "=", "UPDATE")
      .where("event_object_table", "in", names)
      .execute();
    for (const { t } of triggers) checked.add(t);
  }
  for (const row of columns) {
    if (row.generated) checked.add(row.t);
    if (!forms.has(row.t)) forms.set(row.t, { hexPayload: false, uncheckedUpdates: false, maxId: MAX_MESSAGE_ID });
    const column = row.c.toLowerCase();
    if (column === "message") forms.get(row.t)!.hexPayload = keepsUtf8Bytes(row);
    if (column === "id") forms.get(row.t)!.maxId = maxIdOf(row.dataType, row.columnType);
  }
  for (const [t, form] of forms) form.uncheckedUpdates = mariadb && !checked.has(t);
  return forms;
}

function keepsUtf8Bytes({ dataType, charset }: ColumnRow): boolean {
  const type = dataType.toLowerCase();
  if (charset === null) return BINARY_TYPES.has(type);
  return charset.toLowerCase() === "utf8mb4" && type !== "json";
}

/**
 * The head of an UPDATE that finds its rows by an id list, up to its SET: without CHECK evaluation where the
 * table's form allows it, and held to the primary key by a hint. Without the hint MariaDB also weighs
 * poller_idx for the `time_acked IS NULL` beside the ids (a B-tree dive and a range analysis per statement),
 * only to choose the primary key: about 5 % of its instructions per message for an INSERT and its ack
 * (bench/tools/db-instructions.ts). MySQL 8 takes the same hint on UPDATE.
 */
export function updateByIds(table: string, form: TableForm): RawBuilder<unknown> {
  const update = form.uncheckedUpdates ? sql`SET STATEMENT check_constraint_checks=0 FOR UPDATE` : sql`UPDATE`;
  return sql`${update} ${tableRef(table)} FORCE INDEX (PRIMARY)`;
}
