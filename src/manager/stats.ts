/**
 * Per-table counters, named after Vitess's MessageStats. The server exports them to Prometheus; they are
 * plain numbers here so the manager has no metrics dependency.
 */
export interface ManagerStats {
  /** Messages enqueued through this server (written; duplicates of existing ids are not counted). */
  enqueued: number;
  /** Messages put in the cache by the insert path (enqueued through this server). */
  queued: number;
  /** Messages handed to receivers. */
  sent: number;
  /** Of those, redeliveries (epoch >= 1), Vitess's "Delayed". */
  delayed: number;
  acked: number;
  /** Messages rescheduled by a client (postpone API), not the claim that records each delivery. */
  postponed: number;
  purged: number;
  sendFailed: number;
  /** Messages not sent because their claim before the send failed (Postponer). */
  claimFailed: number;
  /** Messages read due here but claimed first by another node (or changed since the read): not sent from here. */
  claimsLost: number;
  pollFailed: number;
  purgeFailed: number;
  polls: number;
  /** Messages moved to the dead-letter table after maxAttempts deliveries. */
  deadLettered: number;
  /** Messages that were out of attempts but could not be moved (left in the table, retried later). */
  deadLetterFailed: number;
  /** Dead letters moved back into the table. */
  redriven: number;
  /** Messages a consumer failed for good (the fail API): moved to the dead-letter table at once. */
  failed: number;
  /** Unacked messages an operator deleted (one by id, or a purge of the table). */
  deleted: number;
}

export function newStats(): ManagerStats {
  return {
    enqueued: 0,
    queued: 0,
    sent: 0,
    delayed: 0,
    acked: 0,
    postponed: 0,
    purged: 0,
    sendFailed: 0,
    claimFailed: 0,
    claimsLost: 0,
    pollFailed: 0,
    purgeFailed: 0,
    polls: 0,
    deadLettered: 0,
    deadLetterFailed: 0,
    redriven: 0,
    failed: 0,
    deleted: 0,
  };
}
