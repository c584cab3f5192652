import type { Clock } from "../clock.js";
import type { Logger } from "../logger.js";
import type { Random } from "../model/backoff.js";
import type { TableOptions } from "../options.js";
import type { MessageStore } from "../store/types.js";
import type { ByteBudget } from "./byte-budget.js";
import { PriorityCache } from "./cache.js";
import { Holdings } from "./holdings.js";
import { ReceiverSet } from "./receivers.js";
import { type ManagerStats, newStats } from "./stats.js";

/** What every part of a table's manager talks to: its table, the store, time, randomness and the log. */
export interface TableEnv {
  readonly table: string;
  readonly store: MessageStore;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: Logger;
}

/**
 * The delivery state of one table, shared by the manager's parts (MessageManager wires them to it once):
 * its options, the cache, the receivers and what each holds, whether due rows may be waiting in the table
 * (`pending`), and the counters. A part reads it and changes it through these named operations, so no part
 * writes another's fields, and one counter has one place where it is kept.
 */
export class TableState {
  readonly stats: ManagerStats;
  readonly cache: PriorityCache;
  readonly receivers = new ReceiverSet();
  readonly holdings: Holdings;
  /** Between open() and close() of the manager. */
  open = false;
  private opts: TableOptions;
  /** Vitess starts in pending mode: the first poll must look. */
  private pendingRows = true;

  /** `stats`: the table's counters, kept by the engine across the lives of its managers (new when absent). */
  constructor(options: TableOptions, budget: ByteBudget, creditBack: () => void, stats: ManagerStats = newStats()) {
    this.stats = stats;
    this.opts = options;
    this.cache = new PriorityCache(options.cacheSize, budget);
    this.holdings = new Holdings(creditBack);
  }

  get options(): TableOptions {
    return this.opts;
  }

  /** New options (the table's COMMENT changed): the cache takes its new size at once. */
  configure(options: TableOptions): void {
    this.opts = options;
    this.cache.resize(options.cacheSize);
  }

  /**
   * Open, not paused, with someone to send to. A paused table (options.paused) delivers nothing: its
   * receivers stay subscribed, and it neither polls nor takes enqueued rows into its cache.
   */
  get live(): boolean {
    return this.open && !this.opts.paused && this.receivers.count > 0;
  }

  /** Due rows may be waiting in the table that the cache did not take: poll again as soon as it drains. */
  get pending(): boolean {
    return this.pendingRows;
  }

  /** Rows were left in the table (a full cache, a subscriber gone): the next poll must look. */
  markPending(): void {
    this.pendingRows = true;
  }

  /** A poll read the table: rows are left there when it read all it could, or the cache filled up. */
  polled(rowsLeft: boolean): void {
    this.pendingRows = rowsLeft;
  }

  count(stat: keyof ManagerStats, n = 1): void {
    this.stats[stat] += n;
  }
}
