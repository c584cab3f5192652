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
import { sql, type Kysely } from "kysely";
import { browseSelection, parseBrowseCursor } from "../browse-rules.js";
import type { BrowsedMessage, BrowsePage, BrowseQuery, MessageState } from "../types.js";
import { payloadText } from "./messages.js";
import { idList, nsToMs, nsValue, positiveLimit, tableRef } from "./values.js";

interface BrowseRow {
  id: string;
  priority: number | string;
  epoch: number | string | null;
  time_next: string;
  state: MessageState;
  message: string | Buffer | null;
}

export async function browse(db: Kysely<any>, table: string, query: BrowseQuery, nowMs: number): Promise<BrowsePage> {
  const { select, where } = browseSelection(tableRef(table), nsValue(nowMs, "now"), query.state);
  const limit = positiveLimit(query.limit);
  let after = sql``;
  if (query.cursor !== undefined) {
    const key = parseBrowseCursor(query.cursor, query.order);
    const id = BigInt(key.id);
    after = key.timeNext === undefined ? sql` AND id < ${id}` : sql` AND (time_next, id) > (${key.timeNext}, ${id})`;
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
  const { select, where } = browseSelection(tableRef(table), nsValue(nowMs, "now"), undefined);
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
