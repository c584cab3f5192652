/**
 * Fenced updates: ack, postpone or extend messages only while the caller's delivery of them is current.
 *
 * A delivery is recorded by the post-send postpone (or the leased insert) as epoch + 1, and the next
 * delivery records epoch + 2: so a delivery made with epoch e is current while the row's epoch is e + 1.
 * The rows are read FOR UPDATE and changed in one transaction, so a redelivery cannot be recorded
 * between the check and the change.
 */
import { sql, type Kysely } from "kysely";
import type { DeliveryChange, FencedResult } from "../types.js";
import type { Delivery } from "../../model/messages.js";
import { assignment, extendedTo } from "./messages.js";
import { PLAIN_FORM, type TableForm, updateByIds } from "./table-form.js";
import { idList, tableRef, toNumber } from "./values.js";

export async function updateDeliveries(
  db: Kysely<any>,
  table: string,
  deliveries: readonly Delivery[],
  nowMs: number,
  change: DeliveryChange,
  form: TableForm = PLAIN_FORM,
): Promise<FencedResult> {
  if (deliveries.length === 0) return { changed: 0, stale: [] };
  const ref = tableRef(table);
  const set = assignment(change, nowMs);
  const ids = [...new Set(deliveries.map((d) => d.id))];
  return db.transaction().execute(async (trx) => {
    const { rows } = await sql<{ id: string; epoch: string | number | null; next: string | number | null }>`
      SELECT id, epoch, time_next AS next FROM ${ref}
      WHERE id IN (${idList(ids)}) AND time_acked IS NULL
      FOR UPDATE`.execute(trx);
    const found = new Map(rows.map((r) => [String(r.id), { epoch: Number(r.epoch ?? 0), next: BigInt(r.next ?? 0) }]));
    // An extension that would not move a row's due time later changes nothing: it is reported unchanged.
    const extendedAt = change.kind === "extend" ? extendedTo(change.byMs, nowMs) : undefined;
    const current = new Set<string>();
    const stale: Delivery[] = [];
    const unchanged: Delivery[] = [];
    for (const d of deliveries) {
      const row = found.get(d.id);
      if (row === undefined) continue; // acked or unknown: not an error
      if (row.epoch !== d.epoch + 1) stale.push(d);
      else if (extendedAt !== undefined && row.next >= extendedAt) unchanged.push(d);
      else current.add(d.id);
    }
    const done = (changed: number): FencedResult => (unchanged.length === 0 ? { changed, stale } : { changed, stale, unchanged });
    if (current.size === 0) return done(0);
    const result = await sql`
      ${updateByIds(table, form)} SET ${set}
      WHERE id IN (${idList([...current])}) AND time_acked IS NULL`.execute(trx);
    return done(toNumber(result.numAffectedRows ?? 0n));
  });
}
