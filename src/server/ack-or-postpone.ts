import type { TableHandle } from "../engine/table-handle.js";
import { checkIds, checkReceipts, ValidationError } from "../model/validate.js";

/** An ack or postpone as HTTP and socket frames give it: plain ids, receipts (fenced), or both. */
export interface AckOrPostponeRequest {
  ids?: string[];
  receipts?: string[];
  delayMs?: number;
}

export interface AckOrPostponeResult {
  /** Messages acked or postponed by this call. */
  count: number;
  /** Receipts refused because their message was delivered again since; present when receipts were given. */
  stale?: string[];
}

/**
 * What a request's schema cannot say: one of ids or receipts is given, every id fits 64 bits, every receipt
 * parses. HTTP bodies and socket frames alike (frames.ts); throws ValidationError naming the field.
 */
export function checkIdsAndReceipts(req: Pick<AckOrPostponeRequest, "ids" | "receipts">): void {
  if (req.ids === undefined && req.receipts === undefined) {
    throw new ValidationError("ids", "one of ids or receipts is required");
  }
  if (req.ids !== undefined) checkIds(req.ids);
  if (req.receipts !== undefined) checkReceipts(req.receipts);
}

/** Acks or postpones; the one place HTTP and WebSocket share this logic. */
export async function ackOrPostpone(table: TableHandle, kind: "ack" | "postpone", req: AckOrPostponeRequest): Promise<AckOrPostponeResult> {
  // Both are checked before either is applied: a request refused with a 400 must change nothing.
  checkIdsAndReceipts(req);
  let count = 0;
  if (req.ids !== undefined) {
    count += kind === "ack" ? await table.ack(req.ids) : await table.postpone(req.ids, req.delayMs);
  }
  if (req.receipts === undefined) return { count };
  const fenced = kind === "ack" ? await table.ackReceipts(req.receipts) : await table.postponeReceipts(req.receipts, req.delayMs);
  return { count: count + fenced.changed, stale: fenced.stale };
}

/** How many ids and receipts a request names. */
export function idsAndReceipts(req: AckOrPostponeRequest): number {
  return (req.ids?.length ?? 0) + (req.receipts?.length ?? 0);
}
