/**
 * A short in-memory history per table for the dashboard's charts (GET /v1/tables/{table}/history): each
 * second, how many messages this node enqueued, delivered and saw acked (from its managers' counters); and,
 * while someone watches (the live feed, feed.ts, describes the tables), the table's depth. 15 minutes of
 * each, in rings that never grow. Rates are this node's; depth is the table's, read from the database.
 */
import type { ManagerStats } from "../../manager/stats.js";
import type { TableStatsAnswer } from "../../wire.js";

/** One rate point a second, 15 minutes of them. */
export const HISTORY_STEP_MS = 1_000;
export const HISTORY_POINTS = 900;

/** Messages per second over one step. */
export interface RatePoint {
  t: number;
  enqueued: number;
  delivered: number;
  acked: number;
}

export interface DepthPoint {
  t: number;
  ready: number;
  delayed: number;
  inFlight: number;
  dead: number;
}

/** The counters a rate point is the difference of. */
type Counted = Pick<ManagerStats, "enqueued" | "sent" | "acked">;

/** A fixed-size ring, oldest first when read. */
class Ring<T> {
  private readonly items: T[] = [];
  private start = 0;

  constructor(private readonly size: number) {}

  push(item: T): void {
    if (this.items.length < this.size) this.items.push(item);
    else {
      this.items[this.start] = item;
      this.start = (this.start + 1) % this.size;
    }
  }

  last(): T | undefined {
    if (this.items.length === 0) return undefined;
    return this.items[(this.start + this.items.length - 1) % this.items.length];
  }

  toArray(): T[] {
    return [...this.items.slice(this.start), ...this.items.slice(0, this.start)];
  }
}

interface TableHistory {
  rates: Ring<RatePoint>;
  depth: Ring<DepthPoint>;
  counted: Counted;
  countedAt: number;
}

export class RateHistory {
  private readonly tables = new Map<string, TableHistory>();
  private lastSampleAt: number | undefined;

  constructor(private readonly points = HISTORY_POINTS) {}

  /**
   * Records a rate point per table from its counters now (`stats` by table; a table missing from it is
   * forgotten). A manager's counters start at zero, so a table seen for the first time counts from zero
   * since the previous sample (a table made since). Counters lower than last time (the table was dropped
   * and made again) count from zero.
   */
  sample(now: number, stats: ReadonlyMap<string, Counted>): void {
    for (const name of this.tables.keys()) if (!stats.has(name)) this.tables.delete(name);
    const since = this.lastSampleAt ?? now;
    this.lastSampleAt = now;
    for (const [name, counted] of stats) {
      const h = this.entry(name, since);
      const copy = { enqueued: counted.enqueued, sent: counted.sent, acked: counted.acked };
      const seconds = (now - h.countedAt) / 1000;
      if (seconds <= 0) continue;
      const rate = (key: keyof Counted) => {
        const delta = counted[key] >= h.counted[key] ? counted[key] - h.counted[key] : counted[key];
        return Math.round((delta / seconds) * 100) / 100;
      };
      h.rates.push({ t: now, enqueued: rate("enqueued"), delivered: rate("sent"), acked: rate("acked") });
      h.counted = copy;
      h.countedAt = now;
    }
  }

  /** Records the depth of tables just described. */
  recordDepth(
    now: number,
    tables: ReadonlyArray<{ name: string; stats: Pick<TableStatsAnswer, "ready" | "delayed" | "inFlight" | "dead"> }>,
  ): void {
    for (const { name, stats } of tables) {
      this.entry(name, this.lastSampleAt ?? now).depth.push({
        t: now,
        ready: stats.ready,
        delayed: stats.delayed,
        inFlight: stats.inFlight,
        dead: stats.dead,
      });
    }
  }

  /** A table's history, begun (its counters at zero since `since`) when there is none yet. */
  private entry(name: string, since: number): TableHistory {
    let h = this.tables.get(name);
    if (!h) {
      h = { rates: new Ring(this.points), depth: new Ring(this.points), counted: { enqueued: 0, sent: 0, acked: 0 }, countedAt: since };
      this.tables.set(name, h);
    }
    return h;
  }

  /** The latest rate point of each table that has one. */
  latest(): Map<string, RatePoint> {
    const out = new Map<string, RatePoint>();
    for (const [name, h] of this.tables) {
      const last = h.rates.last();
      if (last) out.set(name, last);
    }
    return out;
  }

  /** A table's points, oldest first (none for a table not sampled yet). */
  of(table: string): { rates: RatePoint[]; depth: DepthPoint[] } {
    const h = this.tables.get(table);
    return h ? { rates: h.rates.toArray(), depth: h.depth.toArray() } : { rates: [], depth: [] };
  }
}
