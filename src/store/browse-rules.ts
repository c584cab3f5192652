/**
 * Browsing as every SQL store does it (mysql/browse.ts, sqlite/browse.ts): the columns and state of a
 * browsed row, the WHERE that keeps the unacked rows of a state, and the cursors' shapes: `<time_next ns>:<id>`
 * in "next" order and `<id>` in "newest" order.
 */
import { sql, type RawBuilder } from "kysely";
import { isMessageId } from "../ids.js";
import { ValidationError } from "../model/validate.js";
import { stateRules } from "./states.js";
import type { BrowseQuery, MessageState } from "./types.js";

/** A signed BIGINT (time_next), then a message id. */
const NEXT_CURSOR = /^(-?(?:0|[1-9][0-9]{0,18})):(0|[1-9][0-9]{0,19})$/;
const NEWEST_CURSOR = /^(0|[1-9][0-9]{0,19})$/;
const MIN_BIGINT = -(2n ** 63n);
const MAX_BIGINT = 2n ** 63n - 1n;

/** The columns of a browsed row of `ref` at `now` (ns), with its state, and the WHERE that keeps the unacked rows of `state` (all when absent). */
export function browseSelection(
  ref: RawBuilder<unknown>,
  now: bigint,
  state: MessageState | undefined,
): { select: RawBuilder<unknown>; where: RawBuilder<unknown> } {
  const rules = stateRules(now);
  const select = sql`
    SELECT id, priority, epoch, time_next, message,
      CASE WHEN ${rules.ready} THEN 'ready' WHEN ${rules.delayed} THEN 'delayed' WHEN ${rules.inFlight} THEN 'inFlight' END AS state
    FROM ${ref}`;
  const which = state === undefined ? sql`((${rules.ready}) OR (${rules.delayed}) OR (${rules.inFlight}))` : sql`(${rules[state]})`;
  return { select, where: sql`time_acked IS NULL AND ${which}` };
}

/** A cursor of `order`'s shape, its values in range: else a ValidationError, a 400 that names it. */
export function parseBrowseCursor(cursor: string, order: BrowseQuery["order"]): { timeNext?: bigint; id: string } {
  const bad = () => new ValidationError("cursor", `is not a cursor of order "${order}", got ${JSON.stringify(cursor)}`);
  if (order === "newest") {
    const m = NEWEST_CURSOR.exec(cursor);
    if (!m || !isMessageId(m[1])) throw bad();
    return { id: m[1] };
  }
  const m = NEXT_CURSOR.exec(cursor);
  if (!m || !isMessageId(m[2])) throw bad();
  const timeNext = BigInt(m[1]!);
  if (timeNext < MIN_BIGINT || timeNext > MAX_BIGINT) throw bad();
  return { timeNext, id: m[2] };
}
