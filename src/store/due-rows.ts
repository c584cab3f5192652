import type { DueRows } from "./types.js";
import type { MessageRow } from "../model/messages.js";

/**
 * How many of a poll's rows, in order, a byte bound takes (MessageStore.readDue): rows while their payload
 * bytes fit `maxBytes` in total, and always the first, so a payload larger than the bound still moves.
 */
export function rowsWithin(bytes: readonly number[], maxBytes: number): number {
  let total = 0;
  for (let i = 0; i < bytes.length; i++) {
    total += bytes[i]!;
    if (total > maxBytes && i > 0) return i;
  }
  return bytes.length;
}

/** The first `n` rows, marked `cut` when rows were left out. */
export function dueRows(rows: MessageRow[], n: number): DueRows {
  if (n >= rows.length) return rows;
  const kept: DueRows = rows.slice(0, n);
  kept.cut = true;
  return kept;
}
