import type { Clock } from "../clock.js";
import type { Logger } from "../logger.js";
import type { MessageStore } from "../store/types.js";
import { Ticker } from "./ticker.js";

export const PURGE_CHUNK = 500;
/** Least time between two purges that ack times asked for: under steady acks, one purge per this, not per ack. */
export const PURGE_SPACING_MS = 500;

export interface PurgerDeps {
  clock: Clock;
  store: MessageStore;
  table: string;
  intervalMs: number;
  purgeAfterMs: () => number;
  onPurged: (n: number) => void;
  onFailed: (err: unknown) => void;
  log: Logger;
}

/**
 * Deletes acked rows older than purgeAfter, in chunks of 500, repeating while chunks come back full
 * (Vitess's runPurge). It runs whether or not anyone is subscribed: at start, every poll interval, and when
 * the oldest acked row passes purgeAfter (known from the acks made here, and after each purge from the
 * table: MIN(time_acked), one index dive), at most every PURGE_SPACING_MS.
 */
export class Purger {
  private readonly ticker: Ticker;
  private lastRun = -Infinity;

  constructor(private readonly deps: PurgerDeps) {
    this.ticker = new Ticker(deps.clock, deps.intervalMs, () => this.purgeOnce(), deps.onFailed);
  }

  start(): void {
    this.ticker.start();
    this.ticker.trigger();
  }

  /** Rows were acked at `at` (epoch ms): purge them when they pass purgeAfter. */
  acked(at: number): void {
    // A purge at t deletes the rows acked before t - purgeAfter: run just after at + purgeAfter.
    const due = Math.floor(at + this.deps.purgeAfterMs()) + 1;
    this.ticker.runBy(Math.max(due, this.lastRun + PURGE_SPACING_MS));
  }

  stop(): Promise<void> {
    return this.ticker.stop();
  }

  trigger(): void {
    this.ticker.trigger();
  }

  setInterval(ms: number): void {
    this.ticker.setInterval(ms);
  }

  private async purgeOnce(): Promise<void> {
    const { store, table, clock } = this.deps;
    this.lastRun = clock.now();
    const cutoff = this.lastRun - this.deps.purgeAfterMs();
    try {
      for (;;) {
        const n = await store.purge(table, cutoff, PURGE_CHUNK);
        this.deps.onPurged(n);
        if (n < PURGE_CHUNK) break;
      }
      const oldest = await store.oldestAck(table);
      if (oldest !== undefined) this.acked(oldest);
    } catch (err) {
      this.deps.onFailed(err);
      this.deps.log.warn({ err, table }, "purge failed");
    }
  }
}
