import type { TableHandle } from "../engine/table-handle.js";
import { checkIdsAndReceipts } from "../model/validate.js";
import type { AckAnswer, FailAnswer, PostponeAnswer } from "../wire.js";

/** The operations that name messages by plain ids, receipts (fenced), or both: over HTTP and in socket frames. */
export type IdOrReceiptOp = "ack" | "postpone" | "fail";

/** An ack, postpone or fail as HTTP and socket frames give it. */
export interface IdOrReceiptRequest {
  ids?: string[];
  receipts?: string[];
  /** Postpone only. */
  delayMs?: number;
  /** Fail only: kept with the dead letter. */
  reason?: string;
}

export interface IdOrReceiptResult {
  /** Messages acked, postponed or failed by this call. */
  count: number;
  /** Receipts refused because their message was delivered again since; present when receipts were given. */
  stale?: string[];
}

/** Runs an ack, postpone or fail; the one place HTTP and WebSocket share this logic. */
export async function runIdOrReceiptOp(table: TableHandle, op: IdOrReceiptOp, req: IdOrReceiptRequest): Promise<IdOrReceiptResult> {
  // Both are checked before either is applied: a request refused with a 400 must change nothing.
  checkIdsAndReceipts(req);
  let count = 0;
  if (req.ids !== undefined) count += await byIds(table, op, req.ids, req);
  if (req.receipts === undefined) return { count };
  const fenced = await byReceipts(table, op, req.receipts, req);
  return { count: count + fenced.changed, stale: fenced.stale };
}

function byIds(table: TableHandle, op: IdOrReceiptOp, ids: string[], req: IdOrReceiptRequest): Promise<number> {
  if (op === "ack") return table.ack(ids);
  if (op === "postpone") return table.postpone(ids, req.delayMs);
  return table.fail(ids, req.reason);
}

function byReceipts(table: TableHandle, op: IdOrReceiptOp, receipts: string[], req: IdOrReceiptRequest) {
  if (op === "ack") return table.ackReceipts(receipts);
  if (op === "postpone") return table.postponeReceipts(receipts, req.delayMs);
  return table.failReceipts(receipts, req.reason);
}

/** An ack's, postpone's or fail's answer: the HTTP body (a frame adds `type` and `ref`). */
export function answerOf(op: IdOrReceiptOp, { count, stale }: IdOrReceiptResult): AckAnswer | PostponeAnswer | FailAnswer {
  const withStale = stale ? { stale } : {};
  if (op === "ack") return { acked: count, ...withStale };
  if (op === "postpone") return { postponed: count, ...withStale };
  return { failed: count, ...withStale };
}

/** How many ids and receipts a request names. */
export function idsAndReceipts(req: IdOrReceiptRequest): number {
  return (req.ids?.length ?? 0) + (req.receipts?.length ?? 0);
}
