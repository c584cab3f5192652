/**
 * Browsing on the embedded store: unacked messages a page at a time, or one by id, read and never
 * delivered. The orders, states and cursors are the MySQL store's (mysql/browse.ts): `<time_next ns>:<id>`
 * in "next" order, `<id>` in "newest" order, keyset pages.
 */
import { sql, type Kysely } from "kysely";
import { browseSelection, parseBrowseCursor } from "../browse-rules.js";
import type { BrowsedMessage, BrowsePage, BrowseQuery, MessageState } from "../types.js";
import { idOf, keyOf, limitOf, ns, nsToMs, num, tableRef } from "./keys.js";

interface BrowseRow {
  id: bigint;
  priority: bigint;
  epoch: bigint;
  time_next: bigint;
  state: MessageState;
  message: string | null;
}

export async function browse(db: Kysely<any>, table: string, query: BrowseQuery, nowMs: number): Promise<BrowsePage> {
  const { select, where } = browseSelection(tableRef(table), ns(nowMs, "now"), query.state);
  let after = sql``;
  if (query.cursor !== undefined) {
    const key = parseBrowseCursor(query.cursor, query.order);
    after = key.timeNext === undefined ? sql` AND id < ${keyOf(key.id)}` : sql` AND (time_next, id) > (${key.timeNext}, ${keyOf(key.id)})`;
  }
  const order = query.order === "next" ? sql`time_next, id` : sql`id DESC`;
  const { rows } = await sql<BrowseRow>`${select} WHERE ${where}${after} ORDER BY ${order} LIMIT ${limitOf(query.limit + 1)}`.execute(db);
  const page = rows.slice(0, query.limit);
  const messages = page.map(toBrowsed);
  const last = page.at(-1);
  if (rows.length <= query.limit || !last) return { messages };
  return { messages, next: query.order === "next" ? `${last.time_next}:${idOf(last.id)}` : idOf(last.id) };
}

export async function getMessage(db: Kysely<any>, table: string, id: string, nowMs: number): Promise<BrowsedMessage | undefined> {
  const { select, where } = browseSelection(tableRef(table), ns(nowMs, "now"), undefined);
  const { rows } = await sql<BrowseRow>`${select} WHERE id = ${keyOf(id)} AND ${where}`.execute(db);
  return rows[0] && toBrowsed(rows[0]);
}

function toBrowsed(r: BrowseRow): BrowsedMessage {
  return {
    id: idOf(r.id),
    priority: num(r.priority),
    epoch: num(r.epoch),
    dueAt: nsToMs(r.time_next),
    state: r.state,
    payload: r.message ?? "null",
    acked: false,
  };
}
