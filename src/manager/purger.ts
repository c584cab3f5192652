import type { MessageStore } from "../store/types.js";
import type { TableEnv, TableState } from "./table-state.js";
import { Ticker } from "./ticker.js";

export const PURGE_CHUNK = 500;
/** Least time between two purges that ack times asked for: under steady acks, one purge per this, not per ack. */
export const PURGE_SPACING_MS = 500;

/**
 * Deletes the table's rows acked before `cutoffMs`, in chunks of PURGE_CHUNK, repeating while chunks come back
 * full (Vitess's runPurge); `purged` is told of each chunk. The one purge loop: a manager's Purger runs it,
 * and so does the engine's sweep for a table that has no manager (engine/table-entry.ts).
 */
export async function purgeAcked(
  env: { store: MessageStore; table: string },
  cutoffMs: number,
  purged: (n: number) => void,
): Promise<void> {
  for (;;) {
    const n = await env.store.purge(env.table, cutoffMs, PURGE_CHUNK);
    purged(n);
    if (n < PURGE_CHUNK) return;
  }
}

export interface PurgerDeps {
  env: TableEnv;
  /** Its options (purgeAfterMs) and counters. */
  state: TableState;
}

/**
 * Deletes acked rows older than purgeAfter (purgeAcked) when the oldest acked row passes purgeAfter, at most
 * every PURGE_SPACING_MS. It learns of acked rows from the acks made here, from the table after each purge
 * (MIN(time_acked), one index dive), and from the engine's sweep (`looked`), which looks at every table's
 * oldest ack once per poll interval in one statement per 100 tables: a table with nothing acked holds no
 * timer and costs no statement of its own.
 */
export class Purger {
  private readonly ticker: Ticker;
  private lastRun = -Infinity;
  /** When the table's oldest ack was last read (a purge, or the sweep). */
  private lookedAt = -Infinity;

  constructor(private readonly deps: PurgerDeps) {
    this.ticker = new Ticker(
      deps.env.clock,
      Infinity,
      () => this.purgeOnce(),
      () => deps.state.count("purgeFailed"),
    );
  }

  start(): void {
    this.ticker.start();
  }

  /** Rows were acked at `at` (epoch ms): purge them when they pass purgeAfter. */
  acked(at: number): void {
    // A purge at t deletes the rows acked before t - purgeAfter: run just after at + purgeAfter.
    const due = Math.floor(at + this.deps.state.options.purgeAfterMs) + 1;
    this.ticker.runBy(Math.max(due, this.lastRun + PURGE_SPACING_MS));
  }

  /** The table's oldest ack was read at `at` (by the sweep): undefined when nothing is acked. */
  looked(oldestAck: number | undefined, at: number): void {
    this.lookedAt = Math.max(this.lookedAt, at);
    if (oldestAck !== undefined) this.acked(oldestAck);
  }

  /** When the table's acks were last looked at. */
  get lastLook(): number {
    return this.lookedAt;
  }

  stop(): Promise<void> {
    return this.ticker.stop();
  }

  private async purgeOnce(): Promise<void> {
    const { clock, log, table } = this.deps.env;
    const { state } = this.deps;
    this.lastRun = clock.now();
    try {
      await purgeAcked(this.deps.env, this.lastRun - state.options.purgeAfterMs, (n) => state.count("purged", n));
      const at = clock.now();
      this.looked(await this.deps.env.store.oldestAck(table), at);
    } catch (err) {
      state.count("purgeFailed");
      log.warn({ err, table }, "purge failed");
    }
  }
}
