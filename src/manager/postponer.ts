import type { SemaphoreInterface } from "async-mutex";
import type { Clock } from "../clock.js";
import type { Logger } from "../logger.js";
import type { MessageStore } from "../store/types.js";
import { backoffMs, jitter, type Random } from "../model/backoff.js";

export interface PostponerDeps {
  clock: Clock;
  random: Random;
  store: MessageStore;
  table: string;
  /** Shared by every table of the engine: bounds the postpones running at once. */
  semaphore: SemaphoreInterface;
  options: () => { ackWaitMs: number; minBackoffMs: number; maxBackoffMs: number };
  onFailed: (err: unknown) => void;
  log: Logger;
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
   * `ids` were sent; `leased` among them were written leased at insert (their epoch already counts this
   * delivery), so they only get a fresh first-delivery lease: time_next = now + ackWait + backoff(0).
   */
  async afterSend(ids: readonly string[], leased: ReadonlySet<string> = new Set()): Promise<void> {
    const { store, table, clock, semaphore, random } = this.deps;
    await semaphore.runExclusive(async () => {
      const o = this.deps.options();
      const now = clock.now();
      const fresh = ids.filter((id) => !leased.has(id));
      const renew = ids.filter((id) => leased.has(id));
      try {
        if (fresh.length > 0) {
          await store.postpone(table, fresh, now, {
            baseDelayMs: o.ackWaitMs,
            minBackoffMs: o.minBackoffMs,
            maxBackoffMs: o.maxBackoffMs,
            jitter: jitter(random),
            incrementEpoch: true,
          });
        }
        if (renew.length > 0) {
          await store.reschedule(table, renew, now, o.ackWaitMs + backoffMs(o.minBackoffMs, o.maxBackoffMs, 0, jitter(random)));
        }
      } catch (err) {
        this.deps.onFailed(err);
        this.deps.log.warn({ err, table, count: ids.length }, "postpone after send failed");
      }
    });
  }
}
