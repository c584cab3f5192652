import type { SemaphoreInterface } from "async-mutex";
import { backoffMs, jitter } from "../model/backoff.js";
import type { MessageRow } from "../model/messages.js";
import type { TableEnv, TableState } from "./table-state.js";

/** A nonce below a millisecond that makes a claim's lease its own (store/mysql/claims.ts). */
const NONCE_LIMIT = 1_000_000;

export interface PostponerDeps {
  env: TableEnv;
  /** Its options (ack wait, backoff) and counters. */
  state: TableState;
  /** Shared by every table of the engine: bounds the claims running at once. */
  semaphore: SemaphoreInterface;
}

/** What a claim gave: the rows to send, and when the earliest of them falls due again unless acked. */
export interface Claimed {
  rows: MessageRow[];
  /** Undefined when nothing was claimed. */
  dueAt?: number;
}

/**
 * Records a delivery before its send: Vitess's post-send postpone, made a claim (issue 25).
 *
 * Vitess postpones a batch after sending it: time_next = now + ackWait + backoff(epoch), epoch + 1. That is
 * safe while one process serves the table; two nodes on one table both read the same due rows and both sent
 * them, within the ack wait, with the same receipt. So the same UPDATE now runs before the send, fenced on
 * what the poll read (unacked, due, the epoch read): a row is sent only by the node whose UPDATE changed it
 * (store.claim). On one node the claim always wins and is still one statement per batch, as the postpone was;
 * the price is that the send waits for it (about a round trip to the database). We chose a claim over one
 * owner per table under a lease because ownership sends nothing while the owner's lease runs out after a
 * crash and leaves every other node's subscribers of that table without messages; claims let every node
 * serve every table, and a dead node's deliveries are simply due again after their ack wait.
 *
 * Rows written leased at insert (InsertPath.leaseForInsert) are claimed already: they are sent as they are
 * while an ack wait of their lease is left, and otherwise get a fresh lease, fenced on their delivery, first.
 * Rows written held (InsertPath.holdForInsert: shared tables, no credit for them yet) are not due for other
 * nodes' polls; their claim accepts them while they still hold the time_next written. (Bench multi-node:
 * without holds, ~20% of the messages were read by both nodes and cost one a claim lost; two nodes ran at
 * 0.76 of one. With them, 0 claims lost and 0.92.)
 *
 * Claims wait for the engine-wide semaphore, so a slow database slows sending (a receiver stays busy until
 * its batch is claimed and sent) instead of piling up work. A failed claim is counted and logged; its rows
 * are not sent (if it committed after all, they are due again after the ack wait).
 */
export class Postponer {
  constructor(private readonly deps: PostponerDeps) {}

  /** Claims `rows` for a send; returns the ones to send (in order) and when they fall due again. */
  async claim(rows: readonly MessageRow[]): Promise<Claimed> {
    const { store, table, clock, random, log } = this.deps.env;
    const { state, semaphore } = this.deps;
    const now = clock.now();
    const o = state.options;
    const fresh: MessageRow[] = [];
    const renew: MessageRow[] = [];
    const mine = new Set<string>();
    let dueAt = Infinity;
    for (const r of rows) {
      if (r.leasedUntil === undefined) fresh.push(r);
      else if (r.leasedUntil - now < o.ackWaitMs) renew.push(r);
      else {
        mine.add(r.id);
        dueAt = Math.min(dueAt, r.leasedUntil);
      }
    }
    if (fresh.length > 0 || renew.length > 0) {
      await semaphore.runExclusive(async () => {
        try {
          if (fresh.length > 0) {
            const j = jitter(random);
            const spec = {
              baseDelayMs: o.ackWaitMs,
              minBackoffMs: o.minBackoffMs,
              maxBackoffMs: o.maxBackoffMs,
              jitter: j,
              incrementEpoch: true,
            };
            const nonce = Math.floor(random() * NONCE_LIMIT);
            const claimed = await store.claim(
              table,
              fresh.map((r) =>
                r.heldUntil === undefined ? { id: r.id, epoch: r.epoch } : { id: r.id, epoch: r.epoch, heldUntil: r.heldUntil },
              ),
              now,
              spec,
              nonce,
            );
            for (const id of claimed) mine.add(id);
            state.count("claimsLost", fresh.length - claimed.length);
            // The backoff grows with the epoch: the lowest epoch's claimed row falls due first.
            let epoch = Infinity;
            for (const r of fresh) if (mine.has(r.id)) epoch = Math.min(epoch, r.epoch);
            if (epoch !== Infinity) dueAt = Math.min(dueAt, now + o.ackWaitMs + backoffMs(o.minBackoffMs, o.maxBackoffMs, epoch, j));
          }
          if (renew.length > 0) {
            // Their epoch already counts this delivery: a first-delivery lease, unless someone claimed them since.
            const renewed = await this.extendLeases(renew, now);
            for (const id of renewed.ids) mine.add(id);
            state.count("claimsLost", renew.length - renewed.ids.length);
            if (renewed.dueAt !== undefined) dueAt = Math.min(dueAt, renewed.dueAt);
          }
        } catch (err) {
          state.count("claimFailed", fresh.length + renew.length);
          log.warn({ err, table, count: rows.length }, "claim before send failed; the batch is not sent");
        }
      });
    }
    const claimed = rows.filter((r) => mine.has(r.id));
    return dueAt === Infinity || claimed.length === 0 ? { rows: claimed } : { rows: claimed, dueAt };
  }

  /**
   * A claimed batch whose send failed or took long: its lease is made to count from now, as Vitess's
   * post-send postpone would have it, so the ack wait (and, for a failed send, the wait before the others get
   * it) is not used up by the send. Fenced on the delivery; returns when the rows fall due, if renewed.
   */
  async afterSlowSend(rows: readonly MessageRow[]): Promise<number | undefined> {
    const { table, clock, log } = this.deps.env;
    return this.deps.semaphore.runExclusive(async () => {
      try {
        return (await this.extendLeases(rows, clock.now())).dueAt;
      } catch (err) {
        log.warn({ err, table, count: rows.length }, "could not renew the leases of a slow send; they may be redelivered early");
        return undefined;
      }
    });
  }

  /** Leases of current deliveries of `rows` extended to an ack wait plus backoff from `now`; stale ones left. */
  private async extendLeases(rows: readonly MessageRow[], now: number): Promise<{ ids: string[]; dueAt?: number }> {
    const { store, table, random } = this.deps.env;
    const o = this.deps.state.options;
    let epoch = Infinity;
    for (const r of rows) epoch = Math.min(epoch, r.epoch);
    const lease = o.ackWaitMs + backoffMs(o.minBackoffMs, o.maxBackoffMs, epoch, jitter(random));
    const deliveries = rows.map((r) => ({ id: r.id, epoch: r.epoch }));
    const { stale } = await store.updateDeliveries(table, deliveries, now, { kind: "extend", byMs: lease });
    const lost = new Set(stale.map((d) => d.id));
    const ids = rows.filter((r) => !lost.has(r.id)).map((r) => r.id);
    return ids.length > 0 ? { ids, dueAt: now + lease } : { ids };
  }
}
