import type { Clock } from "../clock.js";
import { TableNotFoundError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { SweepPlan } from "../manager/manager.js";
import { Ticker } from "../manager/ticker.js";
import type { MessageStore, SweepQuery, SweepResult } from "../store/types.js";

/** Tables one sweep statement looks at (a UNION ALL of one SELECT per table). */
export const SWEEP_CHUNK = 100;
/**
 * How often the sweeper looks for tables whose time has come, at least (sooner when a table asked for a time
 * before the next tick at the last sweep): a look is late by at most this after a table's plans change.
 */
export const SWEEP_TICK_MS = 1_000;
/** After failed sweeps the tick waits longer, doubling from SWEEP_TICK_MS up to this. */
const MAX_SWEEP_BACKOFF_MS = 30_000;

/** A table the sweep looks after: a table entry, or a manager on its own (tests). */
export interface SweepTarget {
  nextSweep(): SweepPlan;
  swept(result: SweepResult, at: number): void;
}

export interface SweeperDeps {
  store: MessageStore;
  clock: Clock;
  log: Logger;
  /** A table the store says is not there (dropped behind the engine's back): the engine reads the schema again. */
  missing?: (table: string) => void;
}

/**
 * The engine's periodic look at its tables, in place of a poll and a purge timer per table (issue 29). Every
 * SWEEP_TICK_MS it asks each table when it wants looking at (`nextSweep`: for due rows a poll interval after
 * its last poll while someone is subscribed, for acked rows to purge a poll interval after the last look),
 * and looks at those whose time has come, SWEEP_CHUNK tables a statement (MessageStore.sweep). A table told
 * rows are due polls at once; one told its oldest ack plans its purge. So 10,000 idle tables cost 100
 * statements per poll interval instead of 20,000, and no timer each.
 */
export class Sweeper {
  private readonly targets = new Map<string, SweepTarget>();
  private readonly ticker: Ticker;
  private failures = 0;

  constructor(private readonly deps: SweeperDeps) {
    this.ticker = new Ticker(deps.clock, SWEEP_TICK_MS, () => this.sweepOnce());
  }

  add(table: string, target: SweepTarget): void {
    this.targets.set(table, target);
  }

  remove(table: string): void {
    this.targets.delete(table);
  }

  start(): void {
    this.ticker.start();
    this.ticker.trigger();
  }

  stop(): Promise<void> {
    return this.ticker.stop();
  }

  /** Looks now at the tables whose time has come (a tick, sooner). */
  sweepNow(): Promise<void> {
    return this.sweepOnce();
  }

  private async sweepOnce(): Promise<void> {
    const now = this.deps.clock.now();
    const queries: SweepQuery[] = [];
    for (const [table, target] of this.targets) {
      const plan = target.nextSweep();
      const due = plan.dueAt !== undefined && plan.dueAt <= now;
      if (due || plan.acksAt <= now) queries.push({ table, due });
    }
    let failed = false;
    for (let i = 0; i < queries.length; i += SWEEP_CHUNK) {
      if (!(await this.sweepChunk(queries.slice(i, i + SWEEP_CHUNK), now))) failed = true;
    }
    this.failures = failed ? this.failures + 1 : 0;
    this.ticker.setInterval(Math.min(MAX_SWEEP_BACKOFF_MS, SWEEP_TICK_MS * 2 ** this.failures));
    if (!failed) this.ticker.runBy(this.earliestAfter(this.deps.clock.now()));
  }

  /** The soonest time after `now` a table wants looking at: a table polling more often than a tick gets its looks. */
  private earliestAfter(now: number): number {
    let earliest = Infinity;
    for (const target of this.targets.values()) {
      const { dueAt, acksAt } = target.nextSweep();
      if (dueAt !== undefined && dueAt > now && dueAt < earliest) earliest = dueAt;
      if (acksAt > now && acksAt < earliest) earliest = acksAt;
    }
    return earliest;
  }

  /** One statement; a table found missing is left out and the rest looked at again. False when it failed. */
  private async sweepChunk(chunk: SweepQuery[], now: number): Promise<boolean> {
    while (chunk.length > 0) {
      try {
        const found = await this.deps.store.sweep(chunk, now);
        for (const q of chunk) {
          const result = found.get(q.table);
          if (result) this.targets.get(q.table)?.swept(result, now);
        }
        return true;
      } catch (err) {
        if (!(err instanceof TableNotFoundError) || !chunk.some((q) => q.table === err.table)) {
          this.deps.log.warn({ err, tables: chunk.length }, "sweep failed; looking again after a pause");
          return false;
        }
        this.deps.missing?.(err.table);
        chunk = chunk.filter((q) => q.table !== err.table);
      }
    }
    return true;
  }
}
