/**
 * The typed schema of the tables whose shape tablemq fixes (kysely's `Database`): its own, and the part of
 * information_schema it reads to discover message tables. Message tables are not
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

/** The columns of information_schema that discovery reads (ddl.ts, table-form.ts). */
export interface InformationSchema {
  "information_schema.tables": { table_schema: string; table_name: string; table_type: string; table_comment: string | null };
  "information_schema.columns": {
    table_schema: string;
    table_name: string;
    column_name: string;
    data_type: string;
    column_type: string;
    character_set_name: string | null;
    generation_expression: string | null;
  };
  "information_schema.check_constraints": { constraint_schema: string; table_name: string; check_clause: string };
  "information_schema.triggers": {
    event_object_schema: string;
    event_object_table: string;
    event_manipulation: string;
  };
}

export interface TablemqDatabase extends InformationSchema {
  tablemq_webhooks: WebhooksTable;
}
