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
import { checkedId, idList, tableRef, toNumber } from "./values.js";

/** updateDeliveriesIn's arguments after the connection. */
type FencedUpdate = Parameters<typeof updateDeliveriesIn> extends [Kysely<any>, ...infer Rest] ? Rest : never;

/** updateDeliveriesIn in a transaction of its own. */
export async function updateDeliveries(db: Kysely<any>, ...update: FencedUpdate): Promise<FencedResult> {
  if (update[1].length === 0) return { changed: 0, stale: [] };
  return db.transaction().execute((trx) => updateDeliveriesIn(trx, ...update));
}

/**
 * updateDeliveries on `db` as it is: in the caller's transaction (`tablemq/sql`). The UPDATE checks each
 * row's epoch again, so even outside a transaction (each statement its own) a stale delivery changes
 * nothing; only its report could then be off. Ids and times are read as text: a connection that is not
 * the server's may read BIGINTs as doubles.
 */
export async function updateDeliveriesIn(
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
  const { rows } = await sql<{ id: string; epoch: string | number | null; next: string | null }>`
    SELECT CAST(id AS CHAR) AS id, epoch, CAST(time_next AS CHAR) AS next FROM ${ref}
    WHERE id IN (${idList(ids)}) AND time_acked IS NULL
    FOR UPDATE`.execute(db);
  const found = new Map(rows.map((r) => [String(r.id), { epoch: Number(r.epoch ?? 0), next: BigInt(r.next ?? 0) }]));
  // An extension that would not move a row's due time later changes nothing: it is reported unchanged.
  const extendedAt = change.kind === "extend" ? extendedTo(change.byMs, nowMs) : undefined;
  const current = new Map<string, number>();
  const stale: Delivery[] = [];
  const unchanged: Delivery[] = [];
  for (const d of deliveries) {
    const row = found.get(d.id);
    if (row === undefined) continue; // acked or unknown: not an error
    if (row.epoch !== d.epoch + 1) stale.push(d);
    else if (extendedAt !== undefined && row.next >= extendedAt) unchanged.push(d);
    else current.set(d.id, row.epoch);
  }
  const done = (changed: number): FencedResult => (unchanged.length === 0 ? { changed, stale } : { changed, stale, unchanged });
  if (current.size === 0) return done(0);
  const epochs = sql.raw([...current].map(([id, epoch]) => `(${checkedId(id)},${epoch})`).join(","));
  const result = await sql`
    ${updateByIds(table, form)} SET ${set}
    WHERE id IN (${idList([...current.keys()])}) AND time_acked IS NULL AND (id, epoch) IN (${epochs})`.execute(db);
  return done(toNumber(result.numAffectedRows ?? 0n));
}
