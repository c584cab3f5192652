/**
 * Claims: a delivery recorded in the table before it is sent, so that two nodes on one table cannot both
 * send a message within its ack wait (issue 25; see the Postponer for the design).
 *
 * One UPDATE, by primary key, records the delivery of every row that is still what the caller read: unacked,
 * due, and at the epoch it was read with. Its SET is Vitess's post-send postpone (time_next = now + ack wait
 * + backoff(epoch), epoch + 1). When every row changed, all are this call's: one statement per batch, as
 * many as the postpone it replaces; when none did, none are. When only some did (another node claimed the
 * others first, or they were acked or rescheduled since the read), the rows are read back by primary key,
 * and a row is this call's when it holds exactly the lease this call wrote: its epoch and its time_next to
 * the nanosecond. Each
 * claim writes its own lease: the caller adds a random nonce below a millisecond (`nonceNs`) to the start,
 * so two claims of one row write equal leases only if they drew the same nonce and jitter in the same
 * millisecond.
 */
import { sql, type Kysely } from "kysely";
import { backoffNs } from "../../model/backoff.js";
import type { ClaimRow } from "../../model/messages.js";
import type { BackoffSpec } from "../types.js";
import { backoffExpression } from "./messages.js";
import { PLAIN_FORM, type TableForm, updateByIds } from "./table-form.js";
import { checkedId, idList, nsValue, tableRef, toNumber } from "./values.js";

/** A nonce is below this (ns): it never moves a lease by a millisecond. */
export const CLAIM_NONCE_LIMIT = 1_000_000;

export async function claim(
  db: Kysely<any>,
  table: string,
  rows: readonly ClaimRow[],
  nowMs: number,
  spec: BackoffSpec,
  nonceNs: number,
  form: TableForm = PLAIN_FORM,
): Promise<string[]> {
  if (rows.length === 0) return [];
  if (!Number.isInteger(nonceNs) || nonceNs < 0 || nonceNs >= CLAIM_NONCE_LIMIT) throw new Error(`invalid claim nonce ${nonceNs}`);
  const ids = rows.map((r) => r.id);
  const now = nsValue(nowMs, "now");
  const start = now + nsValue(spec.baseDelayMs, "baseDelayMs") + BigInt(nonceNs);
  const asRead = sql.raw(rows.map((r) => `(${checkedId(r.id)},${epochValue(r.epoch)})`).join(","));
  // A held row (written by this node's insert path, see InsertPath) is claimable while it holds its hold.
  const held = rows.filter((r) => r.heldUntil !== undefined);
  const due =
    held.length === 0
      ? sql`time_next <= ${now}`
      : sql`(time_next <= ${now} OR (id, time_next) IN (${sql.raw(held.map((r) => `(${checkedId(r.id)},${nsValue(r.heldUntil!, "heldUntil")})`).join(","))}))`;
  // SET is evaluated left to right: time_next is computed from the epoch *before* the increment.
  const result = await sql`
    ${updateByIds(table, form)}
    SET time_next = ${start} + ${backoffExpression(spec)}, epoch = IFNULL(epoch, 0) + 1
    WHERE id IN (${idList(ids)}) AND time_acked IS NULL AND ${due}
      AND (id, IFNULL(epoch, 0)) IN (${asRead})`.execute(db);
  const changed = toNumber(result.numAffectedRows ?? 0n);
  if (changed === rows.length) return ids;
  if (changed === 0) return [];
  // Short: learn which rows hold this call's lease.
  const { rows: found } = await sql<{ id: string; epoch: string | number | null; next: string | number | null }>`
    SELECT id, epoch, time_next AS next FROM ${tableRef(table)} FORCE INDEX (PRIMARY)
    WHERE id IN (${idList(ids)}) AND time_acked IS NULL`.execute(db);
  const current = new Map(found.map((r) => [String(r.id), { epoch: Number(r.epoch ?? 0), next: BigInt(r.next ?? 0) }]));
  return rows
    .filter((r) => {
      const row = current.get(r.id);
      return (
        row !== undefined &&
        row.epoch === r.epoch + 1 &&
        row.next === start + backoffNs(spec.minBackoffMs, spec.maxBackoffMs, r.epoch, spec.jitter)
      );
    })
    .map((r) => r.id);
}

function epochValue(epoch: number): string {
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new Error(`invalid epoch ${epoch}`);
  return String(epoch);
}
