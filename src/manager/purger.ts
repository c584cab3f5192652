import type { TableEnv, TableState } from "./table-state.js";
import { Ticker } from "./ticker.js";

export const PURGE_CHUNK = 500;
/** Least time between two purges that ack times asked for: under steady acks, one purge per this, not per ack. */
export const PURGE_SPACING_MS = 500;

export interface PurgerDeps {
  env: TableEnv;
  /** Its options (purgeAfterMs, pollIntervalMs) and counters. */
  state: TableState;
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
    this.ticker = new Ticker(
      deps.env.clock,
      deps.state.options.pollIntervalMs,
      () => this.purgeOnce(),
      () => deps.state.count("purgeFailed"),
    );
  }

  start(): void {
    this.ticker.start();
    this.ticker.trigger();
  }

  /** Rows were acked at `at` (epoch ms): purge them when they pass purgeAfter. */
  acked(at: number): void {
    // A purge at t deletes the rows acked before t - purgeAfter: run just after at + purgeAfter.
    const due = Math.floor(at + this.deps.state.options.purgeAfterMs) + 1;
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
    const { store, table, clock, log } = this.deps.env;
    const { state } = this.deps;
    this.lastRun = clock.now();
    const cutoff = this.lastRun - state.options.purgeAfterMs;
    try {
      for (;;) {
        const n = await store.purge(table, cutoff, PURGE_CHUNK);
        state.count("purged", n);
        if (n < PURGE_CHUNK) break;
      }
      const oldest = await store.oldestAck(table);
      if (oldest !== undefined) this.acked(oldest);
    } catch (err) {
      state.count("purgeFailed");
      log.warn({ err, table }, "purge failed");
    }
  }
}
