/**
 * Message statements: insert, read due rows, postpone, reschedule, ack, coalesced settlements, purge.
 *
 * Every batch operation is one statement, or for settleGroups one round trip. Counts are "rows matched":
 * mysql2 connects with the CLIENT_FOUND_ROWS flag, so an UPDATE that leaves a row's values unchanged still
 * counts it.
 */
import { sql, type Kysely, type RawBuilder } from "kysely";
import { OutcomeUnknownError, RejectedWriteError, UnavailableError } from "../../errors.js";
import { MAX_MESSAGE_ID } from "../../ids.js";
import { maxBackoffOf, maxShift } from "../../model/backoff.js";
import { insertResult } from "../deliveries.js";
import { rowsWithin } from "../due-rows.js";
import type { BackoffSpec, DeliveryChange, DueRows, InsertResult, Settlement, SettleGroup } from "../types.js";
import type { MessageRow, NewMessage } from "../../model/messages.js";
import { errno } from "./ddl.js";
import { asRejection, refusing } from "./refusals.js";
import { PLAIN_FORM, type TableForm, updateByIds } from "./table-form.js";
import { checkedId, idList, msValue, nsToMs, nsValue, positiveLimit, priorityValue, sqlString, tableRef, toNumber } from "./values.js";

// ---------------------------------------------------------------------------------------------------
// Insert

const ER_DUP_ENTRY = 1062;

/**
 * Inserts new messages; an id that already exists is left untouched and reported as a duplicate, as is a
 * repeat of an id earlier in the same request (the first occurrence wins).
 *
 * When the fast path meets a duplicate, existing ids are found by a SELECT before an INSERT of the rest.
 * If another writer inserts one of our *new* ids between the two statements, the INSERT keeps its row
 * (ON DUPLICATE KEY UPDATE id = id) and we still report that id as inserted: the message exists exactly
 * once either way, only the report is off.
 */
export async function insertMessages(
  db: Kysely<any>,
  table: string,
  rows: readonly NewMessage[],
  form: TableForm = PLAIN_FORM,
): Promise<InsertResult> {
  const ref = tableRef(table);
  rows.forEach(validateNewMessage);
  // Refused here rather than by the server, which would name the row only by its number.
  const tooLarge = form.maxId < MAX_MESSAGE_ID ? rows.find((r) => BigInt(r.id) > form.maxId) : undefined;
  if (tooLarge) {
    throw new RejectedWriteError(`${tooLarge.id} is larger than the table's id column holds (${form.maxId})`, tooLarge.id, {
      column: "id",
    });
  }
  const firsts = new Map<string, NewMessage>();
  for (const row of rows) if (!firsts.has(row.id)) firsts.set(row.id, row);
  if (firsts.size === 0) return { inserted: [], duplicates: [] };

  // Fast path, one statement: a plain INSERT is all or nothing, so if no id exists it inserts every row,
  // and if one does it fails with ER_DUP_ENTRY having written nothing, and we take the careful path.
  const all = [...firsts.values()];
  try {
    await sql`
      INSERT INTO ${ref} (id, priority, epoch, time_next, time_acked, message)
      VALUES ${valuesRows(all, form)}`.execute(db);
    return insertResult(rows, new Set(firsts.keys()));
  } catch (err) {
    if (errno(err) !== ER_DUP_ENTRY) throw asRejection(err, all);
  }
  const existing = await existingIds(db, table, [...firsts.keys()]);
  const fresh = [...firsts.values()].filter((row) => !existing.has(row.id));
  if (fresh.length > 0) {
    // Not INSERT IGNORE: that would also turn a bad payload (JSON check) or out-of-range value into a
    // silently skipped row. This form only tolerates the duplicate key.
    const insert = sql`
      INSERT INTO ${ref} (id, priority, epoch, time_next, time_acked, message)
      VALUES ${valuesRows(fresh, form)}
      ON DUPLICATE KEY UPDATE id = id`.execute(db);
    await refusing(insert, fresh);
  }
  return insertResult(rows, new Set(fresh.map((row) => row.id)));
}

function validateNewMessage(row: NewMessage): void {
  checkedId(row.id);
  priorityValue(row.priority);
  msValue(row.timeNext, "timeNext"); // made a BigInt once, by valuesRows
  if (row.epoch !== undefined && !(Number.isSafeInteger(row.epoch) && row.epoch >= 0)) {
    throw new Error(`invalid epoch ${String(row.epoch)} of message ${row.id}`);
  }
  if (typeof row.payload !== "string") throw new Error(`payload of message ${row.id} must be JSON text`);
}

/**
 * The VALUES rows of an insert as one piece of SQL text, from rows validateNewMessage passed: ids, priorities,
 * epochs and times are checked integers written as literals, and the payload is a hex literal of its UTF-8
 * bytes where the table's form allows it (table-form.ts), else quoted by `sqlString` (values.ts). The
 * statement means what it would with bound parameters; it is only cheaper to make (a batch of 1,000 rows
 * would be 6,000 parameters).
 */
function valuesRows(rows: readonly NewMessage[], form: TableForm): RawBuilder<unknown> {
  const payloads = form.hexPayload ? hexLiterals(rows) : rows.map((r) => sqlString(r.payload));
  return sql.raw(rows.map((r, i) => `(${r.id},${r.priority},${r.epoch ?? 0},${nsValue(r.timeNext)},NULL,${payloads[i]})`).join(","));
}

/** Where hexLiterals writes payloads' UTF-8 bytes: one buffer, reused (a new one per statement made the
 * server's memory churn: more page faults and RSS, and more CPU than the database saved). */
const SCRATCH_BYTES = 256 * 1024;
const scratch = Buffer.allocUnsafe(SCRATCH_BYTES);

/**
 * Each payload as X'…', its UTF-8 bytes (the bytes mysql2 would send for the statement's text). As many
 * payloads as surely fit are written into the scratch buffer and turned into hex at once, then cut apart: a
 * buffer and a hex string per payload cost more. A payload too big for the scratch buffer is encoded alone.
 */
function hexLiterals(rows: readonly NewMessage[]): string[] {
  const literals: string[] = [];
  let i = 0;
  while (i < rows.length) {
    const payload = rows[i]!.payload;
    if (payload.length * 3 > SCRATCH_BYTES) {
      literals.push(sqlString(payload));
      i++;
      continue;
    }
    const ends: number[] = [];
    let end = 0;
    // A UTF-16 code unit is at most 3 UTF-8 bytes.
    while (i < rows.length && end + rows[i]!.payload.length * 3 <= SCRATCH_BYTES)
      ends.push((end += scratch.write(rows[i++]!.payload, end, "utf8")));
    const hex = scratch.toString("hex", 0, end);
    let start = 0;
    for (const e of ends) {
      literals.push(`X'${hex.slice(start * 2, e * 2)}'`);
      start = e;
    }
  }
  return literals;
}

async function existingIds(db: Kysely<any>, table: string, ids: string[]): Promise<Set<string>> {
  // As text: a connection that is not the server's (tablemq/sql) may read BIGINTs as doubles.
  const { rows } = await sql<{ id: string }>`SELECT CAST(id AS CHAR) AS id FROM ${tableRef(table)} WHERE id IN (${idList(ids)})`.execute(
    db,
  );
  return new Set(rows.map((r) => String(r.id)));
}

// ---------------------------------------------------------------------------------------------------
// Read

/**
 * The poller's read. Exported so tests can EXPLAIN the exact statement: ORDER BY priority, time_next must
 * follow poller_idx (time_acked, priority, time_next) ascending, so the plan is an index scan that stops
 * after `limit` rows, with no filesort. `id` breaks ties, oldest first: InnoDB's secondary index ends with
 * the primary key, so the index still gives that order, and a plan with a filesort (a table laid out as
 * Vitess's docs show, or MariaDB's choice for a fresh table of a few rows) no longer orders ties, and
 * picks the rows under LIMIT, arbitrarily.
 *
 * With `inline` (a byte-bounded read, readDueWithin) a payload longer than `inline` bytes is left out
 * (NULL) and every row's `len` comes along; the rows, their order and the plan are the same.
 */
export function readDueQuery(table: string, nowMs: number, limit: number, inline?: number): RawBuilder<DueRow> {
  const message =
    inline === undefined ? sql`message` : sql`IF(LENGTH(message) <= ${inline}, message, NULL) AS message, LENGTH(message) AS len`;
  return sql<DueRow>`
    SELECT id, priority, time_next, epoch, ${message}
    FROM ${tableRef(table)}
    WHERE time_acked IS NULL AND time_next <= ${nsValue(nowMs, "now")}
    ORDER BY priority, time_next, id
    LIMIT ${positiveLimit(limit)}`;
}

interface DueRow {
  id: string;
  priority: number | string;
  time_next: string;
  epoch: string | number;
  message: string | Buffer | null;
  /** The payload's bytes, in a bounded read only. */
  len?: number | string | null;
}

export async function readDue(db: Kysely<any>, table: string, nowMs: number, limit: number, maxBytes = Infinity): Promise<DueRows> {
  if (maxBytes === Infinity) return (await readDueQuery(table, nowMs, limit).execute(db)).rows.map((r) => toMessageRow(r));
  return readDueWithin(db, table, nowMs, limit, maxBytes);
}

function toMessageRow(r: DueRow, payload = payloadText(r.message)): MessageRow {
  return { id: String(r.id), priority: Number(r.priority), timeNext: nsToMs(r.time_next), epoch: Number(r.epoch), payload };
}

/** Payloads up to this size always come with a bounded poll's first statement (see readDueWithin). */
const INLINE_PAYLOAD_BYTES = 4_096;

/**
 * The poller's read under a byte bound, without ever holding more than about `maxBytes` of payloads (or
 * `limit` × 4 KiB) in memory: the first statement brings each row's payload only when it is small (at most
 * max(4 KiB, maxBytes ÷ limit)), and every row's length; the rows that fit the bound are kept, in order,
 * and the large payloads among them are fetched by id in a second statement. A table of small messages
 * takes one statement, as before.
 */
async function readDueWithin(db: Kysely<any>, table: string, nowMs: number, limit: number, maxBytes: number): Promise<DueRows> {
  const inline = Math.max(INLINE_PAYLOAD_BYTES, Math.floor(maxBytes / positiveLimit(limit)));
  const { rows } = await readDueQuery(table, nowMs, limit, inline).execute(db);
  const lengths = rows.map((r) => toNumber(r.len));
  const n = rowsWithin(lengths, maxBytes);
  const large = new Set<string>();
  for (let i = 0; i < n; i++) if (lengths[i]! > inline) large.add(String(rows[i]!.id));
  const payloads = new Map<string, string>();
  if (large.size > 0) {
    const { rows: fetched } = await sql<{ id: string; message: string | Buffer | null }>`
      SELECT id, message FROM ${tableRef(table)} FORCE INDEX (PRIMARY) WHERE id IN (${idList([...large])})`.execute(db);
    for (const r of fetched) payloads.set(String(r.id), payloadText(r.message));
  }
  const result: MessageRow[] = [];
  for (const r of rows.slice(0, n)) {
    const id = String(r.id);
    const payload = large.has(id) ? payloads.get(id) : payloadText(r.message);
    if (payload === undefined) continue; // acked and purged between the two statements
    result.push(toMessageRow(r, payload));
  }
  const due: DueRows = result;
  if (n < rows.length) due.cut = true;
  return due;
}

/**
 * The payload as JSON text. A JSON column is passed through as it is. Vitess's own examples declare
 * `message VARBINARY`: such bytes are delivered as they are when they hold JSON, else as a JSON string of
 * their UTF-8 text, so a frame is always valid JSON.
 */
export function payloadText(message: string | Buffer | null): string {
  if (message === null) return "null";
  if (typeof message === "string") return message;
  const text = message.toString("utf8");
  try {
    JSON.parse(text);
    return text;
  } catch {
    return JSON.stringify(text);
  }
}

// ---------------------------------------------------------------------------------------------------
// Postpone, reschedule, ack, purge

/**
 * The backoff of model/backoff.ts backoffNs(), per row, on the row's current epoch:
 *   raw = FLOOR(DOUBLE(min << LEAST(epoch, cap)) * jitter); IF(raw < min, min, IF(max > 0 AND raw > max, max, raw))
 * Types are pinned so the result equals the JS reference bit for bit: the shift is on BIGINT UNSIGNED
 * (an integer shift, not a string's), the product is in DOUBLE like JS's Number (a DECIMAL product would
 * be exact and could floor differently), and the result is cast back to an integer before it is added to
 * the nanosecond clock (a double sum would lose the low bits of ~1.7e18). The jitter is bound as the
 * shortest decimal that round-trips to the same double. `cap` keeps min << shift <= 2^61, so no overflow.
 */
export function backoffExpression(spec: BackoffSpec): RawBuilder<unknown> {
  const min = nsValue(spec.minBackoffMs, "minBackoffMs");
  if (spec.minBackoffMs < 0 || spec.maxBackoffMs < 0) throw new Error("backoff bounds must be >= 0");
  const max = nsValue(maxBackoffOf(spec.minBackoffMs, spec.maxBackoffMs), "maxBackoffMs");
  if (!Number.isFinite(spec.jitter) || spec.jitter < 0) throw new Error(`invalid jitter ${String(spec.jitter)}`);
  const cap = maxShift(min);
  const raw = sql`CAST(FLOOR(
      CAST(CAST(${min} AS UNSIGNED) << LEAST(GREATEST(IFNULL(epoch, 0), 0), ${cap}) AS DOUBLE) * CAST(${String(spec.jitter)} AS DOUBLE)
    ) AS SIGNED)`;
  return sql`IF(${raw} < ${min}, ${min}, IF(${max} > 0 AND ${raw} > ${max}, ${max}, ${raw}))`;
}

/** time_next = now + delay for unacked ids; the epoch is unchanged. */
export function reschedule(
  db: Kysely<any>,
  table: string,
  ids: readonly string[],
  nowMs: number,
  delayMs: number,
  form = PLAIN_FORM,
): Promise<number> {
  return changeUnacked(db, table, ids, { kind: "reschedule", delayMs }, nowMs, form);
}

/** Marks unacked ids acked; returns how many this call acked (an id acked before is not counted). */
export function ack(db: Kysely<any>, table: string, ids: readonly string[], nowMs: number, form = PLAIN_FORM): Promise<number> {
  return changeUnacked(db, table, ids, { kind: "ack" }, nowMs, form);
}

export async function changeUnacked(
  db: Kysely<any>,
  table: string,
  ids: readonly string[],
  change: Settlement,
  nowMs: number,
  form: TableForm,
): Promise<number> {
  if (ids.length === 0) return 0;
  return affected(await settleStatement(table, { ids, change, nowMs }, form).execute(db));
}

function settleStatement(
  table: string,
  g: { ids: readonly string[]; change: Settlement; nowMs: number },
  form: TableForm,
): RawBuilder<unknown> {
  return sql`${updateByIds(table, form)} SET ${assignment(g.change, g.nowMs)} WHERE id IN (${idList(g.ids)}) AND time_acked IS NULL`;
}

/** The due time (ns) an extension by `byMs` at `nowMs` gives. */
export function extendedTo(byMs: number, nowMs: number): bigint {
  return nsValue(nowMs, "now") + nsValue(byMs, "byMs");
}

/** The SET clause of a change to unacked rows (settlements here, fenced updates in deliveries.ts). */
export function assignment(change: DeliveryChange, nowMs: number): RawBuilder<unknown> {
  const now = nsValue(nowMs, "now");
  switch (change.kind) {
    case "ack":
      return sql`time_acked = ${now}, time_next = NULL`;
    case "reschedule":
      return sql`time_next = ${now + nsValue(change.delayMs, "delayMs")}`;
    case "backoff":
      return sql`time_next = ${now + nsValue(change.spec.baseDelayMs, "baseDelayMs")} + ${backoffExpression(change.spec)}`;
    case "extend":
      return sql`time_next = GREATEST(IFNULL(time_next, 0), ${extendedTo(change.byMs, nowMs)})`;
    case "release":
      return sql`time_next = ${now}, epoch = epoch - 1`;
  }
}

/**
 * Several requests' acks and reschedules in one round trip and one commit: on `batch`, a connection that
 * runs several statements per query, one UPDATE per group inside one transaction. The groups run in order,
 * so an id acked by an earlier group is left alone by a later one, as for requests one after the other.
 * Returns each group's count. One group needs no transaction. If the server refuses a statement, the rest
 * are not run and the transaction is rolled back before the connection goes back to its pool: nothing of
 * the batch was written.
 */
export async function settleGroups(
  batch: Kysely<any>,
  table: string,
  groups: readonly SettleGroup[],
  form = PLAIN_FORM,
): Promise<number[]> {
  const updates = groups.filter((g) => g.ids.length > 0).map((g) => settleStatement(table, g, form));
  let counts: number[];
  if (updates.length <= 1) {
    counts = updates.length === 1 ? [affected(await refusing(updates[0]!.execute(batch)))] : [];
  } else {
    const results = await batch.connection().execute(async (conn) => {
      try {
        const { rows } = await sql<{ affectedRows: number }>`START TRANSACTION; ${sql.join(updates, sql`; `)}; COMMIT`.execute(conn);
        return rows;
      } catch (err) {
        // A lost or timed-out connection is destroyed (guarded-pool.ts), which ends its transaction; a
        // refused statement leaves the transaction open on a live connection, so it is rolled back here.
        if (err instanceof OutcomeUnknownError || err instanceof UnavailableError) throw err;
        try {
          await sql`ROLLBACK`.execute(conn);
        } catch (rollbackErr) {
          // The open part of the batch could still commit with the connection's next transaction.
          const why = (rollbackErr as Error).message;
          throw new OutcomeUnknownError(`a batch of acks and postpones failed and could not be rolled back (${why})`, [], { cause: err });
        }
        throw asRejection(err); // rolled back: nothing of the batch was written
      }
    });
    // One result per statement: START TRANSACTION, the UPDATEs, COMMIT.
    counts = results.slice(1, 1 + updates.length).map((r) => Number(r.affectedRows));
  }
  return groups.map((g) => (g.ids.length > 0 ? counts.shift()! : 0));
}

/** Deletes up to `limit` rows acked before the cutoff (a range on poller_idx's first column). */
export async function deleteUnacked(db: Kysely<any>, table: string, ids: string[] | undefined, limit: number): Promise<number> {
  if (ids !== undefined && ids.length === 0) return 0;
  const which = ids === undefined ? sql`` : sql`AND id IN (${idList(ids)})`;
  const result = await sql`
    DELETE FROM ${tableRef(table)} WHERE time_acked IS NULL ${which}
    LIMIT ${positiveLimit(limit)}`.execute(db);
  return affected(result);
}

export async function purge(db: Kysely<any>, table: string, cutoffMs: number, limit: number): Promise<number> {
  const result = await sql`
    DELETE FROM ${tableRef(table)} WHERE time_acked < ${nsValue(cutoffMs, "cutoff")}
    LIMIT ${positiveLimit(limit)}`.execute(db);
  return affected(result);
}

/** MIN(time_acked): the first column of poller_idx, so one index dive. */
export async function oldestAck(db: Kysely<any>, table: string): Promise<number | undefined> {
  const { rows } = await sql<{ t: string | number | null }>`
    SELECT MIN(time_acked) AS t FROM ${tableRef(table)} WHERE time_acked IS NOT NULL`.execute(db);
  const t = rows[0]?.t;
  return t === null || t === undefined ? undefined : nsToMs(t);
}

/**
 * Distinct future due times of unacked rows. With ids, a primary-key lookup; without, a scan of the
 * unacked part of poller_idx and a sort (poller_idx orders by priority first).
 */
export async function dueTimes(db: Kysely<any>, table: string, afterMs: number, limit: number, ids?: string[]): Promise<number[]> {
  if (ids !== undefined && ids.length === 0) return [];
  const which = ids === undefined ? sql`` : sql`AND id IN (${idList(ids)})`;
  const { rows } = await sql<{ t: string | number }>`
    SELECT DISTINCT time_next AS t FROM ${tableRef(table)}
    WHERE time_acked IS NULL AND time_next > ${nsValue(afterMs, "after")} ${which}
    ORDER BY time_next LIMIT ${positiveLimit(limit)}`.execute(db);
  return rows.map((r) => nsToMs(r.t));
}

function affected(result: { numAffectedRows?: bigint }): number {
  return toNumber(result.numAffectedRows ?? 0n);
}
