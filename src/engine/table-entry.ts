import { ClosedError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { ManagerSnapshot, MessageManager, SweepPlan } from "../manager/manager.js";
import { purgeAcked } from "../manager/purger.js";
import { type ManagerStats, newStats } from "../manager/stats.js";
import type { TableOptions } from "../options.js";
import type { MessageStore, SweepResult } from "../store/types.js";
import type { SweepTarget } from "./sweeper.js";

/** A manager idle this long (nobody subscribed, nothing on its way) is released: its table keeps only its entry. */
export const RELEASE_AFTER_MS = 60_000;

export interface TableEntryDeps {
  store: MessageStore;
  log: Logger;
  /** Makes and opens the table's manager, with the entry's options and counters. */
  makeManager(entry: TableEntry): MessageManager;
  /** How long a manager stays idle before it is released (default RELEASE_AFTER_MS). */
  releaseAfterMs?: number;
  /** The table's next look by the sweep may have come sooner (its options changed): Sweeper.replan. */
  replan(): void;
}

/**
 * What the engine keeps of a table it serves (lazy managers, issue 29): its options, its counters (which
 * outlive each of its managers), and its MessageManager, made when something needs one (a subscriber, an
 * enqueue, an ack, any operation through its TableHandle) and released once it has been idle (`idle`: nobody
 * subscribed, nothing cached or on its way) for RELEASE_AFTER_MS. A table without a manager holds no timer
 * and sends no statement of its own: the engine's sweep (sweeper.ts) looks at its acks with a hundred other
 * tables' and purges them here. Rows due in it need nobody until someone subscribes, whose manager's first
 * poll finds them.
 */
export class TableEntry implements SweepTarget {
  readonly stats: ManagerStats = newStats();
  private current: MessageManager | undefined;
  private opts: TableOptions;
  /** Operations running on the manager (`use`): it is not released under them. */
  private using = 0;
  private idleSince: number | undefined;
  /** When the sweep last looked at the acks, while there is no manager (a manager's Purger keeps its own). */
  private acksLookedAt = -Infinity;
  private purging: Promise<void> | undefined;
  private closed = false;

  constructor(
    readonly name: string,
    options: TableOptions,
    private readonly deps: TableEntryDeps,
  ) {
    this.opts = options;
  }

  get options(): TableOptions {
    return this.opts;
  }

  /** The manager, if one runs now (nothing is made). */
  get manager(): MessageManager | undefined {
    return this.current;
  }

  /** The manager, made if there is none; ClosedError once the table is no longer served (dropped, engine closed). */
  active(): MessageManager {
    if (this.closed) throw new ClosedError(`table ${this.name}`);
    this.idleSince = undefined;
    return (this.current ??= this.deps.makeManager(this));
  }

  /** Runs an operation on the manager (made if needed), which is not released while it runs. */
  async use<T>(op: (manager: MessageManager) => Promise<T>): Promise<T> {
    const manager = this.active();
    this.using++;
    try {
      return await op(manager);
    } finally {
      this.using--;
      this.idleSince = undefined;
    }
  }

  configure(options: TableOptions): void {
    this.opts = options;
    if (this.current) this.current.configure(options);
    else this.deps.replan();
  }

  /** The manager's snapshot, or (none running) the counters with nothing subscribed, cached or held. */
  snapshot(): ManagerSnapshot {
    return (
      this.current?.snapshot() ?? {
        receivers: 0,
        cached: 0,
        held: 0,
        scheduled: 0,
        pending: false,
        paused: this.opts.paused,
        stats: { ...this.stats },
      }
    );
  }

  /**
   * Releases the manager once it has been idle for releaseAfterMs (the engine asks now and then): closed,
   * with nobody to tell, nothing to hand back. Returns its closing, or undefined when nothing is released.
   */
  releaseIfIdle(now: number): Promise<void> | undefined {
    const m = this.current;
    if (!m) return undefined;
    if (this.using > 0 || !m.idle) {
      this.idleSince = undefined;
      return undefined;
    }
    this.idleSince ??= now;
    if (now - this.idleSince < (this.deps.releaseAfterMs ?? RELEASE_AFTER_MS)) return undefined;
    this.current = undefined;
    this.idleSince = undefined;
    this.acksLookedAt = m.acksLookedAt;
    return m.close("table idle");
  }

  /** The table is no longer served: its manager closes (its subscribers are told `reason`), and so does this entry. */
  async close(reason: string): Promise<void> {
    this.closed = true;
    const m = this.current;
    this.current = undefined;
    await Promise.all([m?.close(reason), this.purging]);
  }

  nextSweep(): SweepPlan {
    return this.current?.nextSweep() ?? { dueAt: undefined, acksAt: this.acksLookedAt + this.opts.pollIntervalMs };
  }

  swept(result: SweepResult, at: number): void {
    if (this.current) {
      this.current.swept(result, at);
      return;
    }
    this.acksLookedAt = at;
    const cutoff = at - this.opts.purgeAfterMs;
    if (result.oldestAck === undefined || result.oldestAck >= cutoff || this.purging || this.closed) return;
    const { store, log } = this.deps;
    this.purging = purgeAcked({ store, table: this.name }, cutoff, (n) => (this.stats.purged += n))
      .catch((err: unknown) => {
        this.stats.purgeFailed++;
        log.warn({ err, table: this.name }, "purge failed");
      })
      .finally(() => (this.purging = undefined));
  }
}
