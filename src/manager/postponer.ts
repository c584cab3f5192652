import type { SemaphoreInterface } from "async-mutex";
import { backoffMs, jitter } from "../model/backoff.js";
import type { MessageRow } from "../model/messages.js";
import type { TableEnv, TableState } from "./table-state.js";

export interface PostponerDeps {
  env: TableEnv;
  /** Its options (ack wait, backoff) and counters. */
  state: TableState;
  /** Shared by every table of the engine: bounds the postpones running at once. */
  semaphore: SemaphoreInterface;
}

/**
 * Records a delivery: after every send (failed ones too, so a message that cannot be sent is not retried
 * in a tight loop) the batch gets, in one UPDATE, time_next = now + ackWait + backoff(epoch) and
 * epoch + 1. Postpones wait for the engine-wide semaphore, so a slow database slows sending (a receiver
 * stays busy until its batch is postponed) instead of piling up work. A failed postpone is counted and
 * logged; the rows stay due and the poller will deliver them again.
 */
export class Postponer {
  constructor(private readonly deps: PostponerDeps) {}

  /**
   * `rows` were sent; those in `leased` were written leased at insert (their epoch already counts this
   * delivery), so they only get a fresh first-delivery lease: time_next = now + ackWait + backoff(0).
   * Returns when the earliest of them falls due again unless acked (the backoff grows with the epoch, so the
   * lowest epoch's), or undefined when the postpone failed (the rows stay due).
   */
  async afterSend(rows: readonly MessageRow[], leased: ReadonlySet<string> = new Set()): Promise<number | undefined> {
    const { store, table, clock, random, log } = this.deps.env;
    const { state, semaphore } = this.deps;
    return semaphore.runExclusive(async () => {
      const o = state.options;
      const now = clock.now();
      const fresh = rows.filter((r) => !leased.has(r.id));
      const renew = rows.filter((r) => leased.has(r.id)).map((r) => r.id);
      let earliest = Infinity;
      try {
        if (fresh.length > 0) {
          const j = jitter(random);
          let epoch = Infinity;
          for (const r of fresh) epoch = Math.min(epoch, r.epoch);
          const spec = {
            baseDelayMs: o.ackWaitMs,
            minBackoffMs: o.minBackoffMs,
            maxBackoffMs: o.maxBackoffMs,
            jitter: j,
            incrementEpoch: true,
          };
          await store.postpone(
            table,
            fresh.map((r) => r.id),
            now,
            spec,
          );
          earliest = now + o.ackWaitMs + backoffMs(o.minBackoffMs, o.maxBackoffMs, epoch, j);
        }
        if (renew.length > 0) {
          const lease = o.ackWaitMs + backoffMs(o.minBackoffMs, o.maxBackoffMs, 0, jitter(random));
          await store.reschedule(table, renew, now, lease);
          earliest = Math.min(earliest, now + lease);
        }
        return earliest === Infinity ? undefined : earliest;
      } catch (err) {
        state.count("postponeFailed");
        log.warn({ err, table, count: rows.length }, "postpone after send failed");
        return undefined;
      }
    });
  }
}
