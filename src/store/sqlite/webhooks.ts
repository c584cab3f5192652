/**
 * Webhook configurations on the embedded store: one row per (table, webhook) in `tablemq_webhooks`, as on
 * MySQL (mysql/webhooks.ts). Not a message table: it has no row in `tablemq_tables`.
 */
import { sql, type Kysely } from "kysely";
import type { WebhookConfig } from "../types.js";
import { num } from "./keys.js";
import { TABLES_TABLE } from "./tables.js";

import { WEBHOOKS_TABLE } from "../names.js";

export const createWebhooksTable = sql`CREATE TABLE IF NOT EXISTS ${sql.table(WEBHOOKS_TABLE)} (
  table_name TEXT    NOT NULL,
  name       TEXT    NOT NULL,
  url        TEXT    NOT NULL,
  batch_size INTEGER NOT NULL,
  timeout_ms INTEGER NOT NULL,
  secret     TEXT    DEFAULT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (table_name, name)
) WITHOUT ROWID`;

interface WebhookRow {
  table_name: string;
  name: string;
  url: string;
  batch_size: bigint;
  timeout_ms: bigint;
  secret: string | null;
  created_at: bigint;
  updated_at: bigint;
}

export async function listWebhooks(db: Kysely<any>): Promise<WebhookConfig[]> {
  const { rows } = await sql<WebhookRow>`SELECT * FROM ${sql.table(WEBHOOKS_TABLE)} ORDER BY table_name, name`.execute(db);
  return rows.map((r) => {
    const config: WebhookConfig = {
      table: r.table_name,
      name: r.name,
      url: r.url,
      batchSize: num(r.batch_size),
      timeoutMs: num(r.timeout_ms),
      createdAt: num(r.created_at),
      updatedAt: num(r.updated_at),
    };
    if (r.secret !== null) config.secret = r.secret;
    return config;
  });
}

/** Insert, or replace all but `created_at`; true when the row is new. */
export function putWebhook(db: Kysely<any>, c: WebhookConfig): Promise<boolean> {
  const ref = sql.table(WEBHOOKS_TABLE);
  return db.transaction().execute(async (trx) => {
    const updated = await sql`
      UPDATE ${ref} SET url = ${c.url}, batch_size = ${c.batchSize}, timeout_ms = ${c.timeoutMs}, secret = ${c.secret ?? null},
        updated_at = ${Math.floor(c.updatedAt)}
      WHERE table_name = ${c.table} AND name = ${c.name}`.execute(trx);
    if (Number(updated.numAffectedRows ?? 0n) > 0) return false;
    await sql`
      INSERT INTO ${ref} (table_name, name, url, batch_size, timeout_ms, secret, created_at, updated_at)
      VALUES (${c.table}, ${c.name}, ${c.url}, ${c.batchSize}, ${c.timeoutMs}, ${c.secret ?? null}, ${Math.floor(c.createdAt)},
        ${Math.floor(c.updatedAt)})`.execute(trx);
    return true;
  });
}

export async function deleteWebhook(db: Kysely<any>, table: string, name: string): Promise<boolean> {
  const result = await sql`DELETE FROM ${sql.table(WEBHOOKS_TABLE)} WHERE table_name = ${table} AND name = ${name}`.execute(db);
  return Number(result.numAffectedRows ?? 0n) > 0;
}

/** Webhooks of tables that are not message tables (any more, also when dropped behind the server's back); one statement. */
export async function deleteWebhooksOfMissingTables(db: Kysely<any>, table?: string): Promise<number> {
  const result = await sql`
    DELETE FROM ${sql.table(WEBHOOKS_TABLE)}
    WHERE ${table === undefined ? sql`1 = 1` : sql`table_name = ${table}`}
      AND table_name NOT IN (
        SELECT m.name FROM ${sql.table(TABLES_TABLE)} AS m JOIN sqlite_schema AS s ON s.type = 'table' AND s.name = m.name
      )`.execute(db);
  return Number(result.numAffectedRows ?? 0n);
}
