/**
 * Rules every store applies the same way to what a caller sends it: which deliveries are current, and how
 * an insert's rows are reported.
 */
import type { Delivery, NewMessage } from "../model/messages.js";
import type { InsertResult } from "./types.js";

/**
 * Deliveries against the unacked rows' epochs (`epochs`, by id): a delivery made with epoch e is current
 * while the row's epoch is e + 1, else stale; one of an acked or unknown message is neither.
 */
export function currentDeliveries(
  deliveries: readonly Delivery[],
  epochs: ReadonlyMap<string, number>,
): { current: string[]; stale: Delivery[] } {
  const current = new Set<string>();
  const stale: Delivery[] = [];
  for (const d of deliveries) {
    const epoch = epochs.get(d.id);
    if (epoch === undefined) continue;
    if (epoch === d.epoch + 1) current.add(d.id);
    else stale.push(d);
  }
  return { current: [...current], stale };
}

/** One entry per request row, in request order: the first occurrence of a `fresh` id is inserted, the rest duplicates. */
export function insertResult(rows: readonly NewMessage[], fresh: ReadonlySet<string>): InsertResult {
  const result: InsertResult = { inserted: [], duplicates: [] };
  const seen = new Set<string>();
  for (const { id } of rows) {
    (fresh.has(id) && !seen.has(id) ? result.inserted : result.duplicates).push(id);
    seen.add(id);
  }
  return result;
}
