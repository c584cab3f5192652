/**
 * ack() and postpone() in the application's own transaction (Vitess: "messages can be acked as part of an
 * existing transaction"): by ids, or by receipts, which stay fenced as over HTTP (a receipt whose message
 * was delivered again since changes nothing and comes back in `stale`). The change counts when the
 * transaction commits; after a rollback the message is as it was (and is delivered again when due).
 */
import { systemClock } from "../clock.js";
import { postponeChange } from "../store/postpone.js";
import { DEFAULT_MAX_BATCH } from "../model/limits.js";
import { checkBatchSize } from "../model/enqueue.js";
import { checkIdsAndReceipts, checkTableName } from "../model/validate.js";
import { AckBody, PostponeBody } from "../wire.js";
import { checkWire } from "../wire-check.js";
import { onTable, readTableOptions } from "../store/mysql/ddl.js";
import { updateDeliveriesIn } from "../store/mysql/deliveries.js";
import { PLAIN_FORM } from "../store/mysql/table-form.js";
import { receiptOf } from "../receipts.js";
import { changeUnacked, dueTimes } from "../store/mysql/messages.js";
import type { DeliveryChange, Settlement } from "../store/types.js";
import type { Change, SqlOptions } from "./enqueue.js";
import { kyselyOf, type SqlExecutor } from "./executor.js";

/** Stands in for the table's backoff options when a delay is given (postponeChange does not read them then). */
const NO_BACKOFF = { minBackoffMs: 0, maxBackoffMs: 0 };

/** Which messages: ids (whatever their delivery), receipts (fenced), or both. */
export interface Which {
  ids?: string[];
  receipts?: string[];
}

export interface Acked extends Change {
  /** Messages this call acked (an id acked before, or unknown, is not counted). */
  acked: number;
  /** Receipts refused because their message was delivered again since; present when receipts were given. */
  stale?: string[];
}

export interface Postponed extends Change {
  postponed: number;
  stale?: string[];
}

/** Acks messages of `table` on `executor`, in its transaction if one is open. */
export async function ack(executor: SqlExecutor, table: string, which: Which, options: SqlOptions = {}): Promise<Acked> {
  const { count, stale, wake } = await settle(executor, table, AckBody, which, options, () => ({ kind: "ack" }));
  return { table, acked: count, ...(stale ? { stale } : {}), wake };
}

/**
 * Postpones messages of `table` on `executor`: due again after `delayMs`, or after the table's backoff for
 * each message's deliveries so far when absent (as over HTTP).
 */
export async function postpone(
  executor: SqlExecutor,
  table: string,
  which: Which & { delayMs?: number },
  options: SqlOptions = {},
): Promise<Postponed> {
  const { count, stale, wake } = await settle(executor, table, PostponeBody, which, options, async (db) => {
    // The table's backoff is read only when it is needed.
    return postponeChange(which.delayMs, which.delayMs === undefined ? await readTableOptions(db, table) : NO_BACKOFF);
  });
  return { table, postponed: count, ...(stale ? { stale } : {}), wake };
}

/** Checks the request as the HTTP API does (nothing is written when it fails), then applies the change. */
async function settle(
  executor: SqlExecutor,
  table: string,
  schema: typeof AckBody | typeof PostponeBody,
  which: Which,
  options: SqlOptions,
  changeOf: (db: ReturnType<typeof kyselyOf>) => Settlement | Promise<Settlement>,
): Promise<{ count: number; stale?: string[]; wake: Change["wake"] }> {
  checkTableName(table);
  // In the HTTP route's order: its body schema, the batch size, then ids and receipts.
  checkWire(schema, which, "body");
  checkBatchSize("ids and receipts", (which.ids?.length ?? 0) + (which.receipts?.length ?? 0), options.maxBatch ?? DEFAULT_MAX_BATCH);
  const deliveries = checkIdsAndReceipts(which);
  const db = kyselyOf(executor);
  const now = (options.clock ?? systemClock).now();
  return onTable(
    table,
    (async () => {
      const change = await changeOf(db);
      let count = 0;
      if (which.ids !== undefined) count += await changeUnacked(db, table, which.ids, change, now, PLAIN_FORM);
      let stale: string[] | undefined;
      if (which.receipts !== undefined) {
        const fenced = await updateDeliveriesIn(db, table, deliveries, now, change as DeliveryChange);
        count += fenced.changed;
        stale = fenced.stale.map(receiptOf);
      }
      const forget = [...new Set([...(which.ids ?? []), ...deliveries.map((d) => d.id)])];
      const dueAt =
        change.kind === "ack" || count === 0
          ? []
          : change.kind === "reschedule"
            ? [now + change.delayMs]
            : await dueTimes(db, table, now, forget.length, forget); // each row's own backoff
      return { count, ...(stale ? { stale } : {}), wake: { forget, ...(dueAt.length > 0 ? { dueAt } : {}) } };
    })(),
  );
}
