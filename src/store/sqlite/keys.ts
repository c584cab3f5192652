/**
 * Values as the embedded store writes them. SQLite's INTEGER is a signed 64-bit integer, and message ids
 * are unsigned 64-bit (up to 2^64 - 1): an id is stored as its *key*, id - 2^63, which keeps their order
 * (ORDER BY id, keyset cursors) and fits every id. Times are Vitess's nanoseconds, as on MySQL.
 */
import { sql, type RawBuilder } from "kysely";
import { isMessageId } from "../../ids.js";
import { msToNs } from "../../model/backoff.js";
import { TABLE_NAME } from "../../model/limits.js";

const OFFSET = 2n ** 63n;

/** The key a message id is stored as. */
export function keyOf(id: string): bigint {
  if (!isMessageId(id)) {
    throw new Error(`invalid message id ${JSON.stringify(id)}: must be a decimal integer in [0, 2^64-1] without leading zeros`);
  }
  return BigInt(id) - OFFSET;
}

/** The message id a stored key stands for. */
export function idOf(key: bigint | number): string {
  return String(BigInt(key) + OFFSET);
}

/** A list of ids as their keys, for `IN (...)` (checked integers, written as literals); never empty. */
export function keyList(ids: readonly string[]): RawBuilder<unknown> {
  if (ids.length === 0) throw new Error("keyList: empty id list");
  return sql.raw(ids.map((id) => String(keyOf(id))).join(","));
}

/**
 * "Unacked", for statements that look rows up by id (`id IN (...) AND ${UNACKED_BY_ID}`). The unary `+`
 * keeps the term off the poller index: given `time_acked IS NULL` as is, SQLite's planner takes that index
 * (time_acked = NULL) over the primary key and scans every unacked row, O(backlog) per claim or ack
 * (110 ms per claim of 100 rows at 1,000,000 unacked rows, against 1 ms by key).
 */
export const UNACKED_BY_ID = sql`+time_acked IS NULL`;

/** A validated, quoted table name. */
export function tableRef(name: string): RawBuilder<unknown> {
  if (typeof name !== "string" || !TABLE_NAME.test(name))
    throw new Error(`invalid table name ${JSON.stringify(name)}: must match ${TABLE_NAME.source}`);
  return sql.table(name);
}

/** Epoch ms (finite) → ns. */
export function ns(ms: number, what = "time"): bigint {
  if (!Number.isFinite(ms)) throw new Error(`invalid ${what} ${String(ms)}`);
  return msToNs(ms);
}

/** A ns value read back → epoch ms with microsecond precision. */
export { nsToMs } from "../../model/backoff.js";

/** An INTEGER read back (BigInt with safe integers on) as a number; null and undefined as 0. */
export function num(value: unknown): number {
  return value === null || value === undefined ? 0 : Number(value);
}

/** A positive integer LIMIT. */
export function limitOf(n: number): RawBuilder<unknown> {
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`invalid limit ${String(n)}`);
  return sql.raw(String(n));
}
