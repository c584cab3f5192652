/**
 * Browsing: unacked messages read a page at a time, or one by id, without delivering them. Only SELECTs:
 * no epoch, time_next or lock changes, so a browse is invisible to consumers.
 *
 * Pages are keyset pages (no OFFSET): the cursor is the last row's sort key, `<time_next ns>:<id>` in
 * "next" order and `<id>` in "newest" order, and the next page starts after it. A Vitess table has no index
 * on time_next alone (poller_idx leads with priority), so "next" order sorts the table's unacked rows, and
 * MySQL's filesort keeps only the LIMIT's rows while it does; "newest" walks the primary key backwards and
 * stops at the LIMIT.
 */
import { sql, type Kysely, type RawBuilder } from "kysely";
import { isMessageId } from "../../ids.js";
import { ValidationError } from "../../model/validate.js";
import type { BrowsedMessage, BrowsePage, BrowseQuery, MessageState } from "../types.js";
import { stateRules } from "./states.js";
import { payloadText } from "./messages.js";
import { idList, nsToMs, nsValue, positiveLimit, tableRef } from "./values.js";

/** A signed BIGINT (time_next), then a message id. */
const NEXT_CURSOR = /^(-?(?:0|[1-9][0-9]{0,18})):(0|[1-9][0-9]{0,19})$/;
const NEWEST_CURSOR = /^(0|[1-9][0-9]{0,19})$/;
const MIN_BIGINT = -(2n ** 63n);
const MAX_BIGINT = 2n ** 63n - 1n;

interface BrowseRow {
  id: string;
  priority: number | string;
  epoch: number | string | null;
  time_next: string;
  state: MessageState;
  message: string | Buffer | null;
}

/** The columns of a browsed row, with its state, and the WHERE that keeps the unacked rows of `state` (all when absent). */
function selection(
  table: string,
  nowMs: number,
  state: MessageState | undefined,
): { select: RawBuilder<unknown>; where: RawBuilder<unknown> } {
  const rules = stateRules(nsValue(nowMs, "now"));
  const select = sql`
    SELECT id, priority, epoch, time_next, message,
      CASE WHEN ${rules.ready} THEN 'ready' WHEN ${rules.delayed} THEN 'delayed' WHEN ${rules.inFlight} THEN 'inFlight' END AS state
    FROM ${tableRef(table)}`;
  const which = state === undefined ? sql`((${rules.ready}) OR (${rules.delayed}) OR (${rules.inFlight}))` : sql`(${rules[state]})`;
  return { select, where: sql`time_acked IS NULL AND ${which}` };
}

export async function browse(db: Kysely<any>, table: string, query: BrowseQuery, nowMs: number): Promise<BrowsePage> {
  const { select, where } = selection(table, nowMs, query.state);
  const limit = positiveLimit(query.limit);
  let after = sql``;
  if (query.cursor !== undefined) {
    const key = parseCursor(query.cursor, query.order);
    after = key.timeNext === undefined ? sql` AND id < ${key.id}` : sql` AND (time_next, id) > (${key.timeNext}, ${key.id})`;
  }
  const order = query.order === "next" ? sql`time_next, id` : sql`id DESC`;
  const { rows } = await sql<BrowseRow>`${select} WHERE ${where}${after} ORDER BY ${order} LIMIT ${limit + 1}`.execute(db);
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  const messages = page.map(toBrowsed);
  if (rows.length <= limit || !last) return { messages };
  return { messages, next: query.order === "next" ? `${String(last.time_next)}:${String(last.id)}` : String(last.id) };
}

export async function getMessage(db: Kysely<any>, table: string, id: string, nowMs: number): Promise<BrowsedMessage | undefined> {
  const { select, where } = selection(table, nowMs, undefined);
  const { rows } = await sql<BrowseRow>`${select} WHERE id = ${idList([id])} AND ${where}`.execute(db);
  return rows[0] && toBrowsed(rows[0]);
}

function toBrowsed(r: BrowseRow): BrowsedMessage {
  return {
    id: String(r.id),
    priority: Number(r.priority),
    epoch: Number(r.epoch ?? 0),
    dueAt: nsToMs(r.time_next),
    state: r.state,
    payload: payloadText(r.message),
    acked: false,
  };
}

/** A cursor of `order`'s shape, its values in range: else a ValidationError, a 400 that names it. */
function parseCursor(cursor: string, order: BrowseQuery["order"]): { timeNext?: bigint; id: bigint } {
  const bad = (why: string) => new ValidationError("cursor", `${why}, got ${JSON.stringify(cursor)}`);
  if (order === "newest") {
    const m = NEWEST_CURSOR.exec(cursor);
    if (!m || !isMessageId(m[1])) throw bad('is not a cursor of order "newest"');
    return { id: BigInt(m[1]) };
  }
  const m = NEXT_CURSOR.exec(cursor);
  if (!m || !isMessageId(m[2])) throw bad('is not a cursor of order "next"');
  const timeNext = BigInt(m[1]!);
  if (timeNext < MIN_BIGINT || timeNext > MAX_BIGINT) throw bad('is not a cursor of order "next"');
  return { timeNext, id: BigInt(m[2]) };
}
