import type { Clock } from "../clock.js";
import type { Logger } from "../logger.js";
import type { MessageStore } from "../store/types.js";
import { Ticker } from "./ticker.js";

export const PURGE_CHUNK = 500;

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
 * (Vitess's runPurge). It runs whether or not anyone is subscribed.
 */
export class Purger {
  private readonly ticker: Ticker;

  constructor(private readonly deps: PurgerDeps) {
    this.ticker = new Ticker(deps.clock, deps.intervalMs, () => this.purgeOnce(), deps.onFailed);
  }

  start(): void {
    this.ticker.start();
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
    const cutoff = clock.now() - this.deps.purgeAfterMs();
    for (;;) {
      let n: number;
      try {
        n = await store.purge(table, cutoff, PURGE_CHUNK);
      } catch (err) {
        this.deps.onFailed(err);
        this.deps.log.warn({ err, table }, "purge failed");
        return;
      }
      this.deps.onPurged(n);
      if (n < PURGE_CHUNK) return;
    }
  }
}
