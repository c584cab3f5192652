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

/**
 * Points of many series taken at the same times (every table's at each sample): one ring of the times, and
 * for each series a ring of `fields` numbers per point, made only once one of its values is not zero and
 * dropped once a whole ring's worth of its points are zero again. A series with no ring reads as zeros. So
 * 10,000 idle tables cost no ring each (900 points of 3 rates as objects were ~70 KB a table, 700 MB in
 * all after 15 minutes).
 */
class SparseSeries {
  private readonly times: Float64Array;
  /** Points taken so far (the next one's index); point i is at ring slot i % size. */
  private taken = 0;
  private readonly series = new Map<string, { first: number; ring?: Float64Array; lastNonZero: number }>();

  constructor(
    private readonly size: number,
    private readonly fields: number,
  ) {
    this.times = new Float64Array(size);
  }

  /** Starts a point at time `t`; `put` then writes each series' values of it. */
  begin(t: number): void {
    this.times[this.taken % this.size] = t;
    this.taken++;
  }

  /** Writes `values` as the point just begun for `key` (its first point when it has none). Called each second per table: no allocation while its values are zero. */
  put(key: string, ...values: number[]): void {
    const i = this.taken - 1;
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = { first: i, lastNonZero: -Infinity }));
    let nonZero = false;
    for (const v of values) if (v !== 0) nonZero = true;
    if (nonZero) s.lastNonZero = i;
    if (!s.ring && nonZero) s.ring = new Float64Array(this.size * this.fields); // earlier points: zeros
    if (s.ring) {
      if (i - s.lastNonZero >= this.size)
        delete s.ring; // a whole ring of zeros
      else for (let f = 0; f < this.fields; f++) s.ring[(i % this.size) * this.fields + f] = values[f]!;
    }
  }

  has(key: string): boolean {
    return this.series.has(key);
  }

  delete(key: string): void {
    this.series.delete(key);
  }

  keys(): IterableIterator<string> {
    return this.series.keys();
  }

  /** The key's points, oldest first: [t, ...values] each. */
  points(key: string): number[][] {
    const s = this.series.get(key);
    if (!s) return [];
    const out: number[][] = [];
    for (let i = Math.max(s.first, this.taken - this.size); i < this.taken; i++) out.push(this.point(s, i));
    return out;
  }

  /** The key's latest point, if it has one. */
  last(key: string): number[] | undefined {
    const s = this.series.get(key);
    return s && s.first < this.taken ? this.point(s, this.taken - 1) : undefined;
  }

  private point(s: { ring?: Float64Array }, i: number): number[] {
    const slot = i % this.size;
    const values = Array.from({ length: this.fields }, (_, f) => s.ring?.[slot * this.fields + f] ?? 0);
    return [this.times[slot]!, ...values];
  }
}

interface TableCounters {
  counted: Counted;
  countedAt: number;
}

export class RateHistory {
  /** Each table's counters at its last sample, to take the next rates from. */
  private readonly counters = new Map<string, TableCounters>();
  private readonly rates: SparseSeries;
  private readonly depth: SparseSeries;
  private lastSampleAt: number | undefined;
  private lastDepthAt: number | undefined;

  constructor(points = HISTORY_POINTS) {
    this.rates = new SparseSeries(points, 3);
    this.depth = new SparseSeries(points, 4);
  }

  /**
   * Records a rate point per table from its counters now (`stats` by table; a table missing from it is
   * forgotten). A table's counters start at zero, so a table seen for the first time counts from zero
   * since the previous sample (a table made since). Counters lower than last time (the table was dropped
   * and made again) count from zero.
   */
  sample(now: number, stats: ReadonlyMap<string, Counted>): void {
    for (const name of this.counters.keys()) {
      if (stats.has(name)) continue;
      this.counters.delete(name);
      this.rates.delete(name);
      this.depth.delete(name);
    }
    const since = this.lastSampleAt ?? now;
    if (this.lastSampleAt !== undefined && now <= this.lastSampleAt) return;
    this.lastSampleAt = now;
    this.rates.begin(now);
    for (const [name, counted] of stats) {
      let c = this.counters.get(name);
      if (!c) this.counters.set(name, (c = { counted: { enqueued: 0, sent: 0, acked: 0 }, countedAt: since }));
      const seconds = (now - c.countedAt) / 1000;
      if (seconds <= 0) continue; // the first sample ever: no time before it
      const enqueued = rateOf(counted.enqueued, c.counted.enqueued, seconds);
      const sent = rateOf(counted.sent, c.counted.sent, seconds);
      const acked = rateOf(counted.acked, c.counted.acked, seconds);
      this.rates.put(name, enqueued, sent, acked);
      c.counted.enqueued = counted.enqueued;
      c.counted.sent = counted.sent;
      c.counted.acked = counted.acked;
      c.countedAt = now;
    }
  }

  /** Records the depth of tables just described (all of them at one time). */
  recordDepth(
    now: number,
    tables: ReadonlyArray<{ name: string; stats: Pick<TableStatsAnswer, "ready" | "delayed" | "inFlight" | "dead"> }>,
  ): void {
    if (this.lastDepthAt !== undefined && now <= this.lastDepthAt) now = this.lastDepthAt + 1e-3; // one point per call
    this.lastDepthAt = now;
    this.depth.begin(now);
    for (const { name, stats } of tables) this.depth.put(name, stats.ready, stats.delayed, stats.inFlight, stats.dead);
  }

  /** The latest rate point of each table that has one. */
  latest(): Map<string, RatePoint> {
    const out = new Map<string, RatePoint>();
    for (const name of this.rates.keys()) {
      const p = this.rates.last(name);
      if (p) out.set(name, ratePoint(p));
    }
    return out;
  }

  /** A table's points, oldest first (none for a table not sampled yet). */
  of(table: string): { rates: RatePoint[]; depth: DepthPoint[] } {
    return {
      rates: this.rates.points(table).map(ratePoint),
      depth: this.depth.points(table).map(([t, ready, delayed, inFlight, dead]) => ({
        t: t!,
        ready: ready!,
        delayed: delayed!,
        inFlight: inFlight!,
        dead: dead!,
      })),
    };
  }
}

function ratePoint([t, enqueued, delivered, acked]: number[]): RatePoint {
  return { t: t!, enqueued: enqueued!, delivered: delivered!, acked: acked! };
}

/** Per second, from a counter's value now and before (a counter lower than before started again from zero). */
function rateOf(now: number, before: number, seconds: number): number {
  const delta = now >= before ? now - before : now;
  return Math.round((delta / seconds) * 100) / 100;
}
