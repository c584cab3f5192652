/**
 * Webhook configurations: one row per (table, webhook) in `tablemq_webhooks`, created on first use.
 *
 * The table has no `vitess_message` COMMENT, so discovery never takes it for a message table (a test checks
 * it); a request to create a message table of that name gets a conflict.
 */
import { sql, type Kysely } from "kysely";
import type { WebhookConfig } from "../types.js";
import type { TablemqDatabase } from "./schema.js";
import { errno } from "./ddl.js";
import { toNumber } from "./values.js";

import { WEBHOOKS_TABLE } from "../names.js";

export { WEBHOOKS_TABLE };

/** The store's connection pool, typed for the tables tablemq owns. */
const typed = (db: Kysely<any>) => db as Kysely<TablemqDatabase>;

export function createWebhooksTableStatement() {
  return sql`CREATE TABLE IF NOT EXISTS ${sql.table(WEBHOOKS_TABLE)} (
    table_name VARCHAR(64)   NOT NULL,
    name       VARCHAR(64)   NOT NULL,
    url        VARCHAR(2048) NOT NULL,
    batch_size INT UNSIGNED  NOT NULL,
    timeout_ms INT UNSIGNED  NOT NULL,
    secret     VARCHAR(1024) DEFAULT NULL,
    created_at BIGINT        NOT NULL,
    updated_at BIGINT        NOT NULL,
    PRIMARY KEY (table_name, name)
  ) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin COMMENT 'tablemq webhook subscribers'`;
}

export async function listWebhooks(db: Kysely<any>): Promise<WebhookConfig[]> {
  const rows = await typed(db).selectFrom("tablemq_webhooks").selectAll().orderBy("table_name").orderBy("name").execute();
  return rows.map((r) => {
    const config: WebhookConfig = {
      table: r.table_name,
      name: r.name,
      url: r.url,
      batchSize: toNumber(r.batch_size),
      timeoutMs: toNumber(r.timeout_ms),
      createdAt: toNumber(r.created_at),
      updatedAt: toNumber(r.updated_at),
    };
    if (r.secret !== null) config.secret = r.secret;
    return config;
  });
}

const ER_DUP_ENTRY = 1062;

/**
 * Insert, or replace all but `created_at`; true when the row is new. An INSERT that meets the key tells the
 * two cases apart exactly (ON DUPLICATE KEY UPDATE's affected-row count cannot, under CLIENT_FOUND_ROWS,
 * when nothing changed); a row deleted between the two statements is inserted on the next turn.
 */
export async function putWebhook(db: Kysely<any>, c: WebhookConfig): Promise<boolean> {
  for (;;) {
    try {
      await typed(db)
        .insertInto("tablemq_webhooks")
        .values({
          table_name: c.table,
          name: c.name,
          url: c.url,
          batch_size: c.batchSize,
          timeout_ms: c.timeoutMs,
          secret: c.secret ?? null,
          created_at: Math.floor(c.createdAt),
          updated_at: Math.floor(c.updatedAt),
        })
        .execute();
      return true;
    } catch (err) {
      if (errno(err) !== ER_DUP_ENTRY) throw err;
    }
    const result = await typed(db)
      .updateTable("tablemq_webhooks")
      .set({ url: c.url, batch_size: c.batchSize, timeout_ms: c.timeoutMs, secret: c.secret ?? null, updated_at: Math.floor(c.updatedAt) })
      .where("table_name", "=", c.table)
      .where("name", "=", c.name)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) > 0) return false;
  }
}

export async function deleteWebhook(db: Kysely<any>, table: string, name: string): Promise<boolean> {
  const result = await typed(db).deleteFrom("tablemq_webhooks").where("table_name", "=", table).where("name", "=", name).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** The existence check and the delete are one statement: a table that exists keeps its webhooks. */
export async function deleteWebhooksOfMissingTables(db: Kysely<any>, table?: string): Promise<number> {
  const result = await sql`
    DELETE FROM ${sql.table(WEBHOOKS_TABLE)}
    WHERE ${table === undefined ? sql`1 = 1` : sql`table_name = ${table}`}
      AND NOT EXISTS (
        SELECT 1 FROM information_schema.tables t
        WHERE t.table_schema = DATABASE() AND t.table_name = ${sql.ref(`${WEBHOOKS_TABLE}.table_name`)} AND t.table_type = 'BASE TABLE'
      )`.execute(db);
  return Number(result.numAffectedRows ?? 0n);
}
