/**
 * Dead letters on the embedded store: `<table>_dlq`, made on a table's first dead letter, with the message
 * table's columns plus `reason` and `time_dead` (ns). Moves both ways copy and delete in one transaction.
 * As the MySQL store's dead-letters.ts, whose semantics (and cursors) these are.
 */
import { sql, type Kysely, type Transaction } from "kysely";
import { deadLetterTableOf, MAX_REASON_CHARS } from "../../model/limits.js";
import type { Delivery } from "../../model/messages.js";
import { currentDeliveries } from "../deliveries.js";
import type { DeadLetterPage, FencedResult, RedriveResult } from "../types.js";
import { idOf, keyList, keyOf, limitOf, ns, nsToMs, num, tableRef, UNACKED_BY_ID } from "./keys.js";

const CURSOR = /^(-?[0-9]{1,19}):(0|[1-9][0-9]{0,19})$/;

function dlqRef(table: string) {
  tableRef(table); // validated
  return sql.table(deadLetterTableOf(table));
}

async function ensureDeadLetterTable(trx: Transaction<any>, table: string): Promise<void> {
  await sql`CREATE TABLE IF NOT EXISTS ${dlqRef(table)} (
    id         INTEGER PRIMARY KEY,
    priority   INTEGER NOT NULL,
    epoch      INTEGER NOT NULL,
    time_next  INTEGER,
    time_acked INTEGER,
    message    TEXT,
    reason     TEXT NOT NULL,
    time_dead  INTEGER NOT NULL
  )`.execute(trx);
  await sql`CREATE INDEX IF NOT EXISTS ${sql.id(`${deadLetterTableOf(table)}_dead_idx`)} ON ${dlqRef(table)} (time_dead, id)`.execute(trx);
}

async function deadTableExists(db: Kysely<any>, table: string): Promise<boolean> {
  const { rows } = await sql`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ${deadLetterTableOf(table)}`.execute(db);
  return rows.length > 0;
}

/** Moves the unacked `ids` whose epoch is at least `minEpoch` to the dead letters; returns the ids moved. */
export function deadLetter(
  db: Kysely<any>,
  table: string,
  ids: readonly string[],
  minEpoch: number,
  reason: string,
  nowMs: number,
): Promise<string[]> {
  return move(db, table, [...new Set(ids)], (rows) => rows.filter((r) => r.epoch >= minEpoch).map((r) => r.id), reason, nowMs);
}

/** Moves the messages whose given delivery is current (epoch = delivery's + 1); the others come back stale. */
export async function deadLetterDeliveries(
  db: Kysely<any>,
  table: string,
  deliveries: readonly Delivery[],
  reason: string,
  nowMs: number,
): Promise<FencedResult> {
  const stale: Delivery[] = [];
  const moved = await move(
    db,
    table,
    [...new Set(deliveries.map((d) => d.id))],
    (rows) => {
      const split = currentDeliveries(deliveries, new Map(rows.map((r) => [r.id, r.epoch])));
      stale.splice(0, stale.length, ...split.stale);
      return split.current;
    },
    reason,
    nowMs,
  );
  return { changed: moved.length, stale };
}

function move(
  db: Kysely<any>,
  table: string,
  ids: readonly string[],
  pick: (rows: Array<{ id: string; epoch: number }>) => string[],
  reason: string,
  nowMs: number,
): Promise<string[]> {
  if (ids.length === 0) return Promise.resolve([]);
  const ref = tableRef(table);
  return db.transaction().execute(async (trx) => {
    const { rows } = await sql<{ id: bigint; epoch: bigint }>`
      SELECT id, epoch FROM ${ref} WHERE id IN (${keyList(ids)}) AND ${UNACKED_BY_ID}`.execute(trx);
    const moving = pick(rows.map((r) => ({ id: idOf(r.id), epoch: num(r.epoch) })));
    if (moving.length === 0) return [];
    await ensureDeadLetterTable(trx, table);
    const cols = sql`id, priority, epoch, time_next, time_acked, message`;
    await sql`
      INSERT OR REPLACE INTO ${dlqRef(table)} (${cols}, reason, time_dead)
      SELECT ${cols}, ${reason.slice(0, MAX_REASON_CHARS)}, ${ns(nowMs, "now")} FROM ${ref} WHERE id IN (${keyList(moving)})`.execute(trx);
    await sql`DELETE FROM ${ref} WHERE id IN (${keyList(moving)})`.execute(trx);
    return moving;
  });
}

/** Newest first (time of death, then id, descending); `cursor` continues after the previous page. */
export async function listDead(db: Kysely<any>, table: string, limit: number, cursor?: string): Promise<DeadLetterPage> {
  if (!(await deadTableExists(db, table))) return { messages: [] };
  let where = sql``;
  if (cursor !== undefined) {
    const m = CURSOR.exec(cursor);
    if (!m) throw new Error(`invalid cursor ${JSON.stringify(cursor)}`);
    where = sql`WHERE (time_dead, id) < (${BigInt(m[1]!)}, ${keyOf(m[2]!)})`;
  }
  const { rows } = await sql<{ id: bigint; priority: bigint; epoch: bigint; message: string | null; reason: string; time_dead: bigint }>`
    SELECT id, priority, epoch, message, reason, time_dead FROM ${dlqRef(table)} ${where}
    ORDER BY time_dead DESC, id DESC LIMIT ${limitOf(limit + 1)}`.execute(db);
  const page = rows.slice(0, limit);
  const messages = page.map((r) => ({
    id: idOf(r.id),
    priority: num(r.priority),
    epoch: num(r.epoch),
    payload: r.message ?? "null",
    reason: r.reason,
    deadAt: nsToMs(r.time_dead),
  }));
  const last = page.at(-1);
  return rows.length > limit && last ? { messages, next: `${last.time_dead}:${idOf(last.id)}` } : { messages };
}

export async function countDead(db: Kysely<any>, table: string): Promise<number> {
  if (!(await deadTableExists(db, table))) return 0;
  const { rows } = await sql<{ n: bigint }>`SELECT COUNT(*) AS n FROM ${dlqRef(table)}`.execute(db);
  return num(rows[0]?.n);
}

/**
 * Moves dead letters back with epoch 0, due at `nowMs`: the given ids, or (undefined) the `limit` oldest
 * whose id is free. An id not dead here is `missing`; one in use in the message table again is a `conflict`.
 */
export async function redrive(
  db: Kysely<any>,
  table: string,
  ids: readonly string[] | undefined,
  nowMs: number,
  limit: number,
): Promise<RedriveResult> {
  const asked = ids === undefined ? [] : [...new Set(ids)];
  if (!(await deadTableExists(db, table))) return { redriven: [], missing: asked, conflicts: [] };
  const dlq = dlqRef(table);
  const ref = tableRef(table);
  return db.transaction().execute(async (trx) => {
    const { rows } =
      ids === undefined
        ? await sql<{ id: bigint }>`
            SELECT d.id FROM ${dlq} AS d LEFT JOIN ${ref} AS m ON m.id = d.id
            WHERE m.id IS NULL ORDER BY d.time_dead, d.id LIMIT ${limitOf(limit)}`.execute(trx)
        : asked.length === 0
          ? { rows: [] }
          : await sql<{ id: bigint }>`SELECT id FROM ${dlq} WHERE id IN (${keyList(asked)})`.execute(trx);
    const found = rows.map((r) => idOf(r.id));
    const missing = asked.filter((id) => !found.includes(id));
    if (found.length === 0) return { redriven: [], missing, conflicts: [] };
    const { rows: live } = await sql<{ id: bigint }>`SELECT id FROM ${ref} WHERE id IN (${keyList(found)})`.execute(trx);
    const conflicts = live.map((r) => idOf(r.id));
    const moving = found.filter((id) => !conflicts.includes(id));
    if (moving.length > 0) {
      await sql`
        INSERT INTO ${ref} (id, priority, epoch, time_next, time_acked, message)
        SELECT id, priority, 0, ${ns(nowMs, "now")}, NULL, message FROM ${dlq} WHERE id IN (${keyList(moving)})`.execute(trx);
      await sql`DELETE FROM ${dlq} WHERE id IN (${keyList(moving)})`.execute(trx);
    }
    return { redriven: moving, missing, conflicts };
  });
}
