/**
 * Dead letters: messages that used up their attempts, moved out of the message table into `<table>_dlq`.
 *
 * The dead-letter table has the message table's six Vitess columns, with the same types (so any payload
 * column goes back unchanged on redrive), plus `reason` and `time_dead` (ns). Its COMMENT is not a
 * vitess_message one, so discovery never takes it for a queue. It is created on the first dead letter.
 * Moves both ways lock the rows they move (SELECT ... FOR UPDATE) and copy and delete in one transaction.
 */
import { sql, type Kysely, type Transaction } from "kysely";
import type { DeadLetterPage, DeadMessage, FencedResult, RedriveResult } from "../types.js";
import type { Delivery } from "../../model/messages.js";
import { currentDeliveries } from "../deliveries.js";
import { ER_NO_SUCH_TABLE, errno } from "./ddl.js";
import { payloadText } from "./messages.js";
import { refusing } from "./refusals.js";
import { deadLetterTableOf, MAX_DEAD_LETTER_BASE, MAX_REASON_CHARS } from "../../model/limits.js";
import { idList, nsToMs, nsValue, positiveLimit, tableRef, toNumber } from "./values.js";

const COLUMNS = ["id", "priority", "epoch", "time_next", "time_acked", "message"] as const;
const COLUMN_TYPE = /^[a-z]+( ?\([0-9]+(,[0-9]+)?\))?( unsigned)?$/;
const CURSOR = /^([0-9]{1,20}):(0|[1-9][0-9]{0,19})$/;

export function deadLetterTableName(table: string): string {
  if (table.length > MAX_DEAD_LETTER_BASE) {
    throw new Error(`table name ${JSON.stringify(table)} is too long for a dead-letter table (at most ${MAX_DEAD_LETTER_BASE} characters)`);
  }
  return deadLetterTableOf(table);
}

/** Creates `<table>_dlq` if missing, with the message table's column types. */
export async function ensureDeadLetterTable(db: Kysely<any>, table: string): Promise<void> {
  const dlq = deadLetterTableName(table);
  const { rows } = await sql<{ name: string; type: string }>`
    SELECT column_name AS name, column_type AS type FROM information_schema.columns
    WHERE table_schema = DATABASE() AND table_name = ${table}`.execute(db);
  const types = new Map(rows.map((r) => [String(r.name).toLowerCase(), String(r.type).toLowerCase()]));
  const defs = COLUMNS.map((c) => {
    const type = types.get(c);
    if (!type || !COLUMN_TYPE.test(type)) throw new Error(`${table}.${c}: missing or unexpected column type ${JSON.stringify(type)}`);
    return sql`${sql.ref(c)} ${sql.raw(type)}${c === "id" ? sql` NOT NULL` : sql``}`;
  });
  await sql`CREATE TABLE IF NOT EXISTS ${tableRef(dlq)} (
    ${sql.join(defs)},
    reason    VARCHAR(${sql.raw(String(MAX_REASON_CHARS))}) NOT NULL,
    time_dead BIGINT NOT NULL,
    PRIMARY KEY (id),
    INDEX dead_idx (time_dead, id)
  ) COMMENT 'tablemq_dead_letters'`.execute(db);
}

export async function dropDeadLetterTable(db: Kysely<any>, table: string): Promise<void> {
  if (table.length > MAX_DEAD_LETTER_BASE) return;
  await sql`DROP TABLE IF EXISTS ${tableRef(deadLetterTableName(table))}`.execute(db);
}

/**
 * Moves the unacked `ids` whose epoch is at least `minEpoch` to the dead-letter table. Returns the ids
 * moved (an id acked or redelivered-and-acked meanwhile stays). A row already in the dead-letter table
 * under the same id (an earlier death of a re-enqueued id) is replaced.
 */
export async function deadLetter(
  db: Kysely<any>,
  table: string,
  ids: readonly string[],
  minEpoch: number,
  reason: string,
  nowMs: number,
): Promise<string[]> {
  return moveToDeadLetters(db, table, ids, (rows) => rows.filter((r) => r.epoch >= minEpoch).map((r) => r.id), reason, nowMs);
}

/**
 * Moves the unacked messages whose given delivery is current (the row's epoch is the delivery's + 1, as in
 * deliveries.ts) to the dead-letter table: a consumer failing them for good. The others come back stale;
 * deliveries of acked or unknown messages are neither.
 */
export async function deadLetterDeliveries(
  db: Kysely<any>,
  table: string,
  deliveries: readonly Delivery[],
  reason: string,
  nowMs: number,
): Promise<FencedResult> {
  const stale: Delivery[] = [];
  const moved = await moveToDeadLetters(
    db,
    table,
    [...new Set(deliveries.map((d) => d.id))],
    (rows) => {
      const split = currentDeliveries(deliveries, new Map(rows.map((r) => [r.id, r.epoch])));
      stale.splice(0, stale.length, ...split.stale); // a transaction tried again starts over
      return split.current;
    },
    reason,
    nowMs,
  );
  return { changed: moved.length, stale };
}

/**
 * Locks the unacked rows of `ids`, and moves those `pick` chooses into the dead-letter table (created on
 * the table's first dead letter) in one transaction. Returns the ids moved.
 */
async function moveToDeadLetters(
  db: Kysely<any>,
  table: string,
  ids: readonly string[],
  pick: (rows: Array<{ id: string; epoch: number }>) => string[],
  reason: string,
  nowMs: number,
): Promise<string[]> {
  if (ids.length === 0) return [];
  const dlq = tableRef(deadLetterTableName(table));
  const ref = tableRef(table);
  const cols = sql.join(COLUMNS.map((c) => sql.ref(c)));
  const move = () =>
    db.transaction().execute(async (trx) => {
      const { rows } = await sql<{ id: string; epoch: string | number | null }>`
        SELECT id, epoch FROM ${ref}
        WHERE id IN (${idList(ids)}) AND time_acked IS NULL
        FOR UPDATE`.execute(trx);
      const moving = pick(rows.map((r) => ({ id: String(r.id), epoch: Number(r.epoch ?? 0) })));
      if (moving.length === 0) return [];
      await sql`
        REPLACE INTO ${dlq} (${cols}, reason, time_dead)
        SELECT ${cols}, ${reason.slice(0, MAX_REASON_CHARS)}, ${nsValue(nowMs, "now")} FROM ${ref} WHERE id IN (${idList(moving)})`.execute(
        trx,
      );
      await sql`DELETE FROM ${ref} WHERE id IN (${idList(moving)})`.execute(trx);
      return moving;
    });
  try {
    return await refusing(move());
  } catch (err) {
    if (!isMissingDeadLetterTable(err, table)) throw err;
    await ensureDeadLetterTable(db, table); // the first dead letter of this table
    return refusing(move());
  }
}

/** Newest first (time of death, then id, descending); `cursor` continues after the previous page. */
export async function listDead(db: Kysely<any>, table: string, limit: number, cursor?: string): Promise<DeadLetterPage> {
  const dlq = tableRef(deadLetterTableName(table));
  const after = cursor === undefined ? undefined : parseCursor(cursor);
  const where = after ? sql`WHERE (time_dead, id) < (${after.timeDead}, ${after.id})` : sql``;
  const rows = await ifExists(
    sql<DeadRow>`
      SELECT id, priority, epoch, message, reason, time_dead FROM ${dlq} ${where}
      ORDER BY time_dead DESC, id DESC LIMIT ${positiveLimit(limit + 1)}`.execute(db),
  );
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  const messages: DeadMessage[] = page.map((r) => ({
    id: String(r.id),
    priority: Number(r.priority),
    epoch: Number(r.epoch ?? 0),
    payload: payloadText(r.message),
    reason: String(r.reason),
    deadAt: nsToMs(r.time_dead),
  }));
  return { messages, next: rows.length > limit && last ? `${String(last.time_dead)}:${String(last.id)}` : undefined };
}

export async function countDead(db: Kysely<any>, table: string): Promise<number> {
  if (table.length > MAX_DEAD_LETTER_BASE) return 0;
  const rows = await ifExists(sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM ${tableRef(deadLetterTableName(table))}`.execute(db));
  return toNumber(rows[0]?.n);
}

/**
 * Moves dead letters back into the message table with epoch 0, due at `nowMs`: the given ids, or (ids
 * undefined) the `limit` oldest whose id is free. An id not in the dead-letter table is `missing`; one
 * whose id is in use in the message table again (re-enqueued since) stays dead and is a `conflict`.
 */
export async function redrive(
  db: Kysely<any>,
  table: string,
  ids: readonly string[] | undefined,
  nowMs: number,
  limit: number,
): Promise<RedriveResult> {
  const dlq = tableRef(deadLetterTableName(table));
  const ref = tableRef(table);
  const work = async (trx: Transaction<any>): Promise<RedriveResult> => {
    // "All" takes the oldest dead letters whose id is free in the message table, so conflicts never block it.
    const { rows } =
      ids === undefined
        ? await sql<{ id: string }>`
            SELECT d.id FROM ${dlq} AS d LEFT JOIN ${ref} AS m ON m.id = d.id
            WHERE m.id IS NULL ORDER BY d.time_dead, d.id LIMIT ${positiveLimit(limit)} FOR UPDATE`.execute(trx)
        : await sql<{ id: string }>`SELECT id FROM ${dlq} WHERE id IN (${idList(ids)}) FOR UPDATE`.execute(trx);
    const found = rows.map((r) => String(r.id));
    const missing = ids === undefined ? [] : [...new Set(ids)].filter((id) => !found.includes(id));
    if (found.length === 0) return { redriven: [], missing, conflicts: [] };
    const { rows: live } = await sql<{ id: string }>`SELECT id FROM ${ref} WHERE id IN (${idList(found)}) FOR UPDATE`.execute(trx);
    const conflicts = live.map((r) => String(r.id));
    const moving = found.filter((id) => !conflicts.includes(id));
    if (moving.length > 0) {
      await sql`
        INSERT INTO ${ref} (id, priority, epoch, time_next, time_acked, message)
        SELECT id, priority, 0, ${nsValue(nowMs, "now")}, NULL, message FROM ${dlq} WHERE id IN (${idList(moving)})`.execute(trx);
      await sql`DELETE FROM ${dlq} WHERE id IN (${idList(moving)})`.execute(trx);
    }
    return { redriven: moving, missing, conflicts };
  };
  try {
    return await db.transaction().execute(work);
  } catch (err) {
    if (isMissingDeadLetterTable(err, table)) return { redriven: [], missing: ids === undefined ? [] : [...new Set(ids)], conflicts: [] };
    throw err;
  }
}

interface DeadRow {
  id: string;
  priority: number | string;
  epoch: number | string | null;
  message: string | Buffer | null;
  reason: string;
  time_dead: string;
}

function parseCursor(cursor: string): { timeDead: bigint; id: bigint } {
  const m = CURSOR.exec(cursor);
  if (!m) throw new Error(`invalid cursor ${JSON.stringify(cursor)}`);
  return { timeDead: BigInt(m[1]!), id: BigInt(m[2]!) };
}

/** "Table 'db.<table>_dlq' doesn't exist" (not the message table itself). */
function isMissingDeadLetterTable(err: unknown, table: string): boolean {
  return errno(err) === ER_NO_SUCH_TABLE && String((err as Error).message).includes(`.${deadLetterTableName(table)}'`);
}

/** The rows of a read of the dead-letter table; none when it was never created. */
async function ifExists<T>(read: Promise<{ rows: T[] }>): Promise<T[]> {
  try {
    return (await read).rows;
  } catch (err) {
    if (errno(err) === ER_NO_SUCH_TABLE) return [];
    throw err;
  }
}
