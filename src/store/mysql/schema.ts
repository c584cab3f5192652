/**
 * The typed schema of the tables whose shape tablemq fixes (kysely's `Database`). Message tables are not
 * here: their names are the users', found at run time, and their statements are written as SQL templates
 * (messages.ts) for the literals the hot path needs.
 */
import type { ColumnType } from "kysely";

/** A BIGINT or INT UNSIGNED column: mysql2 returns a number or, past 2^53, a decimal string. */
type Integer = ColumnType<number | string, number, number>;

export interface WebhooksTable {
  table_name: string;
  name: string;
  url: string;
  batch_size: Integer;
  timeout_ms: Integer;
  secret: string | null;
  created_at: Integer;
  updated_at: Integer;
}

export interface TablemqDatabase {
  tablemq_webhooks: WebhooksTable;
}
