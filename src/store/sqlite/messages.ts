/**
 * Message statements on the embedded store: insert, read due rows, claim, settle, fenced updates, purge.
 *
 * SQLite runs in this process, one statement at a time (Kysely's SQLite driver holds its one connection per
 * statement or transaction), so what the MySQL store does in SQL because a round trip is dear is done here
 * in a transaction that reads the rows and writes what this code computed: the backoff of each row is
 * model/backoff.ts's backoffNs itself, not an SQL copy of it. Each write commits (WAL, synchronous=FULL)
 * before it returns.
 */
import { sql, type Kysely, type RawBuilder, type Transaction } from "kysely";
import { backoffNs } from "../../model/backoff.js";
import type { ClaimRow, Delivery, NewMessage } from "../../model/messages.js";
import { PRIORITY } from "../../model/limits.js";
import { insertResult } from "../deliveries.js";
import { rowsWithin } from "../due-rows.js";
import type { BackoffSpec, DeliveryChange, DueRows, FencedResult, InsertResult, SettleGroup } from "../types.js";
import { idOf, keyList, keyOf, limitOf, ns, nsToMs, num, tableRef, UNACKED_BY_ID } from "./keys.js";

// ---------------------------------------------------------------------------------------------------
// Insert

/**
 * Inserts new messages; an id that exists is left untouched and reported as a duplicate, as is a repeat
 * of an id earlier in the same request (the first occurrence wins). One statement: ON CONFLICT DO NOTHING
 * skips only the existing ids (a bad value still fails the whole statement), RETURNING says which went in.
 */
export async function insertMessages(db: Kysely<any>, table: string, rows: readonly NewMessage[]): Promise<InsertResult> {
  const firsts = new Map<string, NewMessage>();
  for (const row of rows) {
    validate(row);
    if (!firsts.has(row.id)) firsts.set(row.id, row);
  }
  if (firsts.size === 0) return { inserted: [], duplicates: [] };
  const values = sql.join(
    [...firsts.values()].map(
      (r) => sql`(${sql.raw(`${keyOf(r.id)},${r.priority},${r.epoch ?? 0},${ns(r.timeNext, "timeNext")}`)},NULL,${r.payload})`,
    ),
  );
  const { rows: written } = await sql<{ id: bigint }>`
    INSERT INTO ${tableRef(table)} (id, priority, epoch, time_next, time_acked, message) VALUES ${values}
    ON CONFLICT (id) DO NOTHING RETURNING id`.execute(db);
  return insertResult(rows, new Set(written.map((r) => idOf(r.id))));
}

function validate(row: NewMessage): void {
  keyOf(row.id);
  if (!Number.isInteger(row.priority) || row.priority < PRIORITY.min || row.priority > PRIORITY.max) {
    throw new Error(`invalid priority ${String(row.priority)} of message ${row.id}`);
  }
  if (row.epoch !== undefined && !(Number.isSafeInteger(row.epoch) && row.epoch >= 0)) {
    throw new Error(`invalid epoch ${String(row.epoch)} of message ${row.id}`);
  }
  if (typeof row.payload !== "string") throw new Error(`payload of message ${row.id} must be JSON text`);
}

// ---------------------------------------------------------------------------------------------------
// Read

interface DueRow {
  id: bigint;
  priority: bigint;
  time_next: bigint;
  epoch: bigint;
  len: bigint;
}

/**
 * Unacked rows due at `nowMs`, ORDER BY priority, time_next, id (the poller index, then the key), at most
 * `limit`, and no more than their payloads fit in `maxBytes`. The order and sizes are read first, the
 * payloads of the rows kept second (in the same transaction): never more than the bound is held.
 */
export function readDue(db: Kysely<any>, table: string, nowMs: number, limit: number, maxBytes = Infinity): Promise<DueRows> {
  const ref = tableRef(table);
  return db.transaction().execute(async (trx) => {
    const { rows } = await sql<DueRow>`
      SELECT id, priority, time_next, epoch, length(CAST(message AS BLOB)) AS len FROM ${ref}
      WHERE time_acked IS NULL AND time_next <= ${ns(nowMs, "now")}
      ORDER BY priority, time_next, id LIMIT ${limitOf(limit)}`.execute(trx);
    const n =
      maxBytes === Infinity
        ? rows.length
        : rowsWithin(
            rows.map((r) => num(r.len)),
            maxBytes,
          );
    const kept = rows.slice(0, n);
    const payloads = await payloadsOf(
      trx,
      table,
      kept.map((r) => r.id),
    );
    const due: DueRows = kept.map((r) => ({
      id: idOf(r.id),
      priority: num(r.priority),
      timeNext: nsToMs(r.time_next),
      epoch: num(r.epoch),
      payload: payloads.get(r.id) ?? "null",
    }));
    if (n < rows.length) due.cut = true;
    return due;
  });
}

async function payloadsOf(trx: Transaction<any>, table: string, keys: readonly bigint[]): Promise<Map<bigint, string>> {
  if (keys.length === 0) return new Map();
  const { rows } = await sql<{ id: bigint; message: string | null }>`
    SELECT id, message FROM ${tableRef(table)} WHERE id IN (${sql.raw(keys.join(","))})`.execute(trx);
  return new Map(rows.map((r) => [r.id, r.message ?? "null"]));
}

// ---------------------------------------------------------------------------------------------------
// Claims and changes to unacked rows

interface Current {
  key: bigint;
  epoch: number;
  next: bigint | null;
}

/** The unacked rows of `ids`, by id. */
async function unacked(trx: Transaction<any>, table: string, ids: readonly string[]): Promise<Map<string, Current>> {
  if (ids.length === 0) return new Map();
  const { rows } = await sql<{ id: bigint; epoch: bigint; time_next: bigint | null }>`
    SELECT id, epoch, time_next FROM ${tableRef(table)} WHERE id IN (${keyList(ids)}) AND ${UNACKED_BY_ID}`.execute(trx);
  return new Map(rows.map((r) => [idOf(r.id), { key: r.id, epoch: num(r.epoch), next: r.time_next }]));
}

/** Sets each row's time_next (and epoch, where given) to the values computed for it: one UPDATE. */
async function setEach(
  trx: Transaction<any>,
  table: string,
  values: ReadonlyArray<{ key: bigint; next: bigint; epoch?: number }>,
): Promise<void> {
  if (values.length === 0) return;
  const next = sql.raw(values.map((v) => `WHEN ${v.key} THEN ${v.next}`).join(" "));
  const withEpoch = values.filter((v) => v.epoch !== undefined);
  const epoch =
    withEpoch.length === 0
      ? sql``
      : sql`, epoch = CASE id ${sql.raw(withEpoch.map((v) => `WHEN ${v.key} THEN ${v.epoch}`).join(" "))} ELSE epoch END`;
  await sql`UPDATE ${tableRef(table)} SET time_next = CASE id ${next} END${epoch}
    WHERE id IN (${sql.raw(values.map((v) => String(v.key)).join(","))})`.execute(trx);
}

/**
 * Records deliveries before their send (MessageStore.claim): a row still unacked, at the epoch read, and
 * due (or still holding the hold it was written with) gets time_next = now + base + nonce + backoff(epoch)
 * and epoch + 1. Returns the ids claimed, in the given order.
 */
export function claim(
  db: Kysely<any>,
  table: string,
  rows: readonly ClaimRow[],
  nowMs: number,
  spec: BackoffSpec,
  nonceNs: number,
): Promise<string[]> {
  if (rows.length === 0) return Promise.resolve([]);
  const now = ns(nowMs, "now");
  const start = now + ns(spec.baseDelayMs, "baseDelayMs") + BigInt(nonceNs);
  return db.transaction().execute(async (trx) => {
    const found = await unacked(
      trx,
      table,
      rows.map((r) => r.id),
    );
    const claimed: string[] = [];
    const values: Array<{ key: bigint; next: bigint; epoch: number }> = [];
    for (const r of rows) {
      const row = found.get(r.id);
      if (!row || row.epoch !== r.epoch || row.next === null) continue;
      if (row.next > now && (r.heldUntil === undefined || row.next !== ns(r.heldUntil, "heldUntil"))) continue;
      found.delete(r.id); // an id given twice is claimed once
      values.push({
        key: row.key,
        next: start + backoffNs(spec.minBackoffMs, spec.maxBackoffMs, row.epoch, spec.jitter),
        epoch: row.epoch + 1,
      });
      claimed.push(r.id);
    }
    await setEach(trx, table, values);
    return claimed;
  });
}

/** What a change makes of one unacked row (as the MySQL store's `assignment`). */
function changed(change: DeliveryChange, row: Current, now: bigint): { next: bigint | null; epoch?: number; acked?: boolean } {
  switch (change.kind) {
    case "ack":
      return { next: null, acked: true };
    case "reschedule":
      return { next: now + ns(change.delayMs, "delayMs") };
    case "backoff": {
      const s = change.spec;
      return { next: now + ns(s.baseDelayMs, "baseDelayMs") + backoffNs(s.minBackoffMs, s.maxBackoffMs, row.epoch, s.jitter) };
    }
    case "extend": {
      const to = now + ns(change.byMs, "byMs");
      return { next: row.next !== null && row.next > to ? row.next : to };
    }
    case "release":
      return { next: now, epoch: row.epoch - 1 };
  }
}

/** Applies `change` to the given unacked rows; returns how many changed. */
async function apply(
  trx: Transaction<any>,
  table: string,
  rows: readonly Current[],
  change: DeliveryChange,
  nowMs: number,
): Promise<number> {
  if (rows.length === 0) return 0;
  const now = ns(nowMs, "now");
  if (change.kind === "ack") {
    await sql`UPDATE ${tableRef(table)} SET time_acked = ${now}, time_next = NULL
      WHERE id IN (${sql.raw(rows.map((r) => String(r.key)).join(","))})`.execute(trx);
    return rows.length;
  }
  await setEach(
    trx,
    table,
    rows.map((r) => {
      const c = changed(change, r, now);
      return c.epoch === undefined ? { key: r.key, next: c.next! } : { key: r.key, next: c.next!, epoch: c.epoch };
    }),
  );
  return rows.length;
}

/** Unacked ids changed by `change` (acks, reschedules, backoffs), unfenced; returns how many. */
export function settle(db: Kysely<any>, table: string, ids: readonly string[], change: DeliveryChange, nowMs: number): Promise<number> {
  if (ids.length === 0) return Promise.resolve(0);
  return db.transaction().execute(async (trx) => apply(trx, table, [...(await unacked(trx, table, ids)).values()], change, nowMs));
}

/** Several requests' settlements in one transaction, in order; each group's count. */
export function settleGroups(db: Kysely<any>, table: string, groups: readonly SettleGroup[]): Promise<number[]> {
  return db.transaction().execute(async (trx) => {
    const counts: number[] = [];
    for (const g of groups) counts.push(await apply(trx, table, [...(await unacked(trx, table, g.ids)).values()], g.change, g.nowMs));
    return counts;
  });
}

/**
 * Fenced updates (the MySQL store's deliveries.ts): a delivery made with epoch e is current while the row's
 * epoch is e + 1; the others come back stale, and an extension that would not move a row later unchanged.
 */
export function updateDeliveries(
  db: Kysely<any>,
  table: string,
  deliveries: readonly Delivery[],
  nowMs: number,
  change: DeliveryChange,
): Promise<FencedResult> {
  if (deliveries.length === 0) return Promise.resolve({ changed: 0, stale: [] });
  return db.transaction().execute(async (trx) => {
    const found = await unacked(trx, table, [...new Set(deliveries.map((d) => d.id))]);
    const extendedAt = change.kind === "extend" ? ns(nowMs, "now") + ns(change.byMs, "byMs") : undefined;
    const current = new Map<string, Current>();
    const stale: Delivery[] = [];
    const unchanged: Delivery[] = [];
    for (const d of deliveries) {
      const row = found.get(d.id);
      if (row === undefined) continue;
      if (row.epoch !== d.epoch + 1) stale.push(d);
      else if (extendedAt !== undefined && (row.next ?? 0n) >= extendedAt) unchanged.push(d);
      else current.set(d.id, row);
    }
    const n = await apply(trx, table, [...current.values()], change, nowMs);
    return unchanged.length === 0 ? { changed: n, stale } : { changed: n, stale, unchanged };
  });
}

// ---------------------------------------------------------------------------------------------------
// Purge, oldest ack, due times

export async function deleteUnacked(db: Kysely<any>, table: string, ids: string[] | undefined, limit: number): Promise<number> {
  if (ids !== undefined && ids.length === 0) return 0;
  const ref = tableRef(table);
  const which: RawBuilder<unknown> = ids === undefined ? sql`time_acked IS NULL` : sql`id IN (${keyList(ids)}) AND ${UNACKED_BY_ID}`;
  const result = await sql`DELETE FROM ${ref} WHERE id IN (SELECT id FROM ${ref} WHERE ${which} LIMIT ${limitOf(limit)})`.execute(db);
  return Number(result.numAffectedRows ?? 0n);
}

export async function purge(db: Kysely<any>, table: string, cutoffMs: number, limit: number): Promise<number> {
  const ref = tableRef(table);
  const result = await sql`DELETE FROM ${ref} WHERE id IN (
    SELECT id FROM ${ref} WHERE time_acked < ${ns(cutoffMs, "cutoff")} LIMIT ${limitOf(limit)})`.execute(db);
  return Number(result.numAffectedRows ?? 0n);
}

export async function oldestAck(db: Kysely<any>, table: string): Promise<number | undefined> {
  const { rows } = await sql<{
    t: bigint | null;
  }>`SELECT MIN(time_acked) AS t FROM ${tableRef(table)} WHERE time_acked IS NOT NULL`.execute(db);
  const t = rows[0]?.t;
  return t === null || t === undefined ? undefined : nsToMs(t);
}

export async function dueTimes(db: Kysely<any>, table: string, afterMs: number, limit: number, ids?: string[]): Promise<number[]> {
  if (ids !== undefined && ids.length === 0) return [];
  const which: RawBuilder<unknown> = ids === undefined ? sql`time_acked IS NULL` : sql`id IN (${keyList(ids)}) AND ${UNACKED_BY_ID}`;
  const { rows } = await sql<{ t: bigint }>`
    SELECT DISTINCT time_next AS t FROM ${tableRef(table)}
    WHERE ${which} AND time_next > ${ns(afterMs, "after")}
    ORDER BY time_next LIMIT ${limitOf(limit)}`.execute(db);
  return rows.map((r) => nsToMs(r.t));
}
