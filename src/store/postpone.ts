/**
 * A client's postpone (a nack): the one rule the server (Settler) and `tablemq/sql` apply alike. After
 * `delayMs` when given; otherwise after the table's backoff for the deliveries the message has had so far
 * (model/backoff.ts), not counting one more (a nack is not a delivery).
 */
import type { Settlement } from "./types.js";
import { jitter, type Random } from "../model/backoff.js";

export type PostponeChange = Exclude<Settlement, { kind: "ack" }>;

export function postponeChange(
  delayMs: number | undefined,
  table: { minBackoffMs: number; maxBackoffMs: number },
  random: Random = Math.random,
): PostponeChange {
  if (delayMs !== undefined) return { kind: "reschedule", delayMs };
  const spec = {
    baseDelayMs: 0,
    minBackoffMs: table.minBackoffMs,
    maxBackoffMs: table.maxBackoffMs,
    jitter: jitter(random),
    incrementEpoch: false,
  };
  return { kind: "backoff", spec };
}
