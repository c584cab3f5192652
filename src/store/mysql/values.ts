/**
 * Validation and conversion of everything that crosses into SQL: identifiers, ids, priorities and times.
 *
 * Identifiers cannot be bound, so they are validated against a strict pattern and then quoted by Kysely
 * (`sql.table` / `sql.ref`). Values are bound, but for the two that every message goes through: id lists
 * (`idList`) and the rows of an insert (messages.ts) are written as literals, checked integers and payloads
 * quoted by `sqlString`, because thousands of bound parameters cost more to build than the statement.
 * Either way ids and nanosecond times reach MySQL as exact integer literals (bigints, which mysql2 renders
 * so): a decimal *string* compared with a BIGINT column is compared as a double in MySQL, which cannot tell
 * 18446744073709551615 from 18446744073709551614.
 */
import { sql, type RawBuilder } from "kysely";
import { isMessageId } from "../../ids.js";
import { msToNs } from "../../model/backoff.js";
import { PRIORITY, TABLE_NAME } from "../../model/limits.js";

const IDENTIFIER = TABLE_NAME;

export function validateIdentifier(name: string, what = "table name"): string {
  if (typeof name !== "string" || !IDENTIFIER.test(name)) {
    throw new Error(`invalid ${what} ${JSON.stringify(name)}: must match ${IDENTIFIER.source}`);
  }
  return name;
}

/** A validated, quoted table reference. */
export function tableRef(name: string): RawBuilder<unknown> {
  return sql.table(validateIdentifier(name));
}

/** Checks a message id: a decimal BIGINT UNSIGNED without leading zeros. Returns it. */
export function checkedId(id: string): string {
  if (!isMessageId(id)) {
    throw new Error(`invalid message id ${JSON.stringify(id)}: must be a decimal integer in [0, 2^64-1] without leading zeros`);
  }
  return id;
}

/**
 * A comma-separated id list for `IN (...)`; callers must not pass an empty list. Each id is checked to be
 * digits only and then written as an integer literal, the same text mysql2 renders for a bound bigint:
 * a list of a thousand ids is one string, not a thousand bound parameters to build, compile and escape.
 */
export function idList(ids: readonly string[]): RawBuilder<unknown> {
  if (ids.length === 0) throw new Error("idList: empty id list");
  for (const id of ids) checkedId(id);
  return sql.raw(ids.join(","));
}

/** What a backslash-escaped, single-quoted MySQL string must escape (mysql2's set, less the double quote). */
// eslint-disable-next-line no-control-regex -- these control characters are what must be escaped
const SPECIAL = /[\0\b\t\n\r\x1a'\\]/g;
const ESCAPED: Record<string, string> = {
  "\0": "\\0",
  "\b": "\\b",
  "\t": "\\t",
  "\n": "\\n",
  "\r": "\\r",
  "\x1a": "\\Z",
  "'": "\\'",
  "\\": "\\\\",
};

/**
 * A string as a single-quoted SQL literal: what mysql2's `escape` writes, except that a double quote stays
 * as it is (inside single quotes it needs no escape, and MySQL reads `\"` and `"` alike there). JSON is full
 * of double quotes and has few of the other characters, so most payloads need no replacement at all; mysql2's
 * escape rebuilt each one piece by piece, a fifth of all the server allocated under load. Like mysql2's, it
 * relies on backslash escapes (connect.ts turns NO_BACKSLASH_ESCAPES off in every session) and on a utf8mb4
 * connection (no multibyte character of utf8mb4 contains the byte of a quote or a backslash).
 */
export function sqlString(value: string): string {
  return `'${value.replace(SPECIAL, (c) => ESCAPED[c]!)}'`;
}

export function priorityValue(priority: number): number {
  if (!Number.isInteger(priority) || priority < PRIORITY.min || priority > PRIORITY.max) {
    throw new Error(`invalid priority ${String(priority)}: must be an integer in [${PRIORITY.min}, ${PRIORITY.max}]`);
  }
  return priority;
}

/** Checks an epoch-ms time (the interface's unit) is a finite number; returns it. */
export function msValue(ms: number, what = "time"): number {
  if (typeof ms !== "number" || !Number.isFinite(ms)) throw new Error(`invalid ${what}: ${String(ms)}`);
  return ms;
}

/** Epoch ms (the interface's unit) → ns (the rows' unit), to bind. */
export function nsValue(ms: number, what = "time"): bigint {
  return msToNs(msValue(ms, what));
}

/** A ns value as read from a BIGINT column (a decimal string) → epoch ms (model/backoff.ts). */
export { nsToMs } from "../../model/backoff.js";

/** A count or aggregate as returned by mysql2 (number, or decimal string for BIGINT/DECIMAL). */
export function toNumber(v: unknown): number {
  if (v === null || v === undefined) return 0;
  return Number(v);
}

export function positiveLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit <= 0) throw new Error(`invalid limit ${String(limit)}: must be an integer > 0`);
  return limit;
}

/** The connection's database, for the WHERE of a query on information_schema. */
export const currentDatabase = sql<string>`DATABASE()`;
