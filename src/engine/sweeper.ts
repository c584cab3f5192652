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
/** Least time between two looks at a table (one whose plan stayed in the past must not spin the sweep). */
const MIN_LOOK_SPACING_MS = 100;
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
 * The engine's periodic look at its tables, in place of a poll and a purge timer per table (issue 29). Each
 * table is filed under the second it wants looking at next (`nextSweep`: for due rows a poll interval after
 * its last poll while someone is subscribed, for acked rows to purge a poll interval after the last look);
 * each tick takes the seconds that have come, asks those tables again (a poll since may have pushed the
 * time on), and looks at the ones whose time has come, SWEEP_CHUNK tables a statement (MessageStore.sweep).
 * A table told rows are due polls at once; one told its oldest ack plans its purge. So 10,000 idle tables
 * cost 100 statements per poll interval instead of 20,000, no timer each, and a tick touches only the tables
 * filed under its second. A table whose time may have come sooner than filed (its options changed, the
 * peers' poll cap) is filed again with `replan`.
 */
export class Sweeper {
  private readonly targets = new Map<string, SweepTarget>();
  /** Tables by the tick (ceil(at / SWEEP_TICK_MS)) they are filed under, and each table's tick. */
  private readonly byTick = new Map<number, Set<string>>();
  private readonly tickOf = new Map<string, number>();
  private readonly ticker: Ticker;
  private failures = 0;

  constructor(private readonly deps: SweeperDeps) {
    this.ticker = new Ticker(deps.clock, SWEEP_TICK_MS, () => this.sweepOnce());
  }

  /** Follows a table: it is looked at on the next tick, then when it asks. */
  add(table: string, target: SweepTarget): void {
    this.targets.set(table, target);
    this.file(table, this.deps.clock.now());
  }

  remove(table: string): void {
    this.targets.delete(table);
    this.unfile(table);
  }

  /** The table's time may have come sooner than it was filed for: it is asked again on the next tick. */
  replan(table: string): void {
    if (this.targets.has(table)) this.file(table, this.deps.clock.now());
  }

  /** Every table is asked again on the next tick (the peers' poll cap changed). */
  replanAll(): void {
    for (const table of this.targets.keys()) this.replan(table);
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
    const nowTick = Math.ceil(now / SWEEP_TICK_MS);
    const queries: SweepQuery[] = [];
    for (const [tick, tables] of [...this.byTick]) {
      if (tick > nowTick) continue;
      this.byTick.delete(tick);
      for (const table of tables) {
        this.tickOf.delete(table);
        const target = this.targets.get(table);
        if (!target) continue;
        const plan = target.nextSweep();
        const due = plan.dueAt !== undefined && plan.dueAt <= now;
        if (due || plan.acksAt <= now) queries.push({ table, due });
        else this.file(table, soonest(plan));
      }
    }
    let failed = false;
    for (let i = 0; i < queries.length; i += SWEEP_CHUNK) {
      if (!(await this.sweepChunk(queries.slice(i, i + SWEEP_CHUNK), now))) failed = true;
    }
    this.failures = failed ? this.failures + 1 : 0;
    this.ticker.setInterval(Math.min(MAX_SWEEP_BACKOFF_MS, SWEEP_TICK_MS * 2 ** this.failures));
    const later = this.deps.clock.now();
    for (const { table } of queries) {
      const target = this.targets.get(table);
      // A table whose look failed is asked again after the pause; one looked at, when it asks next.
      if (target) this.file(table, failed ? later : Math.max(later + MIN_LOOK_SPACING_MS, soonest(target.nextSweep())));
    }
  }

  /** Files `table` under the tick of `at`; a time before the next tick brings that tick forward. */
  private file(table: string, at: number): void {
    const tick = Math.ceil(at / SWEEP_TICK_MS);
    if (this.tickOf.get(table) === tick) return;
    this.unfile(table);
    let tables = this.byTick.get(tick);
    if (!tables) this.byTick.set(tick, (tables = new Set()));
    tables.add(table);
    this.tickOf.set(table, tick);
    if (this.failures === 0) this.ticker.runBy(at);
  }

  private unfile(table: string): void {
    const tick = this.tickOf.get(table);
    if (tick === undefined) return;
    this.tickOf.delete(table);
    const tables = this.byTick.get(tick);
    tables?.delete(table);
    if (tables?.size === 0) this.byTick.delete(tick);
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

/** The sooner of a plan's two times. */
function soonest(plan: SweepPlan): number {
  return plan.dueAt === undefined ? plan.acksAt : Math.min(plan.dueAt, plan.acksAt);
}
