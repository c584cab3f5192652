/**
 * How long SQLite holds this thread: every statement of the embedded store runs synchronously (better-sqlite3),
 * on the thread that calls it, and a commit with synchronous=FULL waits for the WAL's fsync there. Each
 * statement's run is timed (the database's `prepare` is wrapped, so Kysely's statements, BEGIN and COMMIT
 * included, are all counted); the metrics (tablemq_sqlite_*) and the benchmark read these figures.
 */
import { performance } from "node:perf_hooks";
import type Database from "better-sqlite3";

/** Thresholds (ms) the counts of slow statements are kept for. */
export const SLOW_MS = [1, 2, 5, 10, 50] as const;

export interface StatementTimes {
  /** Statements run. */
  count: number;
  /** Their total time, ms. */
  totalMs: number;
  /** The longest one, ms, since whoever reads it last set it to 0 (the metrics: per scrape). */
  maxMs: number;
  /** Statements longer than each of SLOW_MS, in its order. */
  slower: number[];
}

export function newStatementTimes(): StatementTimes {
  return { count: 0, totalMs: 0, maxMs: 0, slower: SLOW_MS.map(() => 0) };
}

const TIMED = new Set<PropertyKey>(["run", "all", "get", "iterate"]);

/** Makes every statement `database` prepares from now on record its run time in `times`. */
export function timeStatements(database: Database.Database, times: StatementTimes): void {
  const record = (ms: number) => {
    times.count++;
    times.totalMs += ms;
    if (ms > times.maxMs) times.maxMs = ms;
    for (let i = 0; i < SLOW_MS.length; i++) if (ms > SLOW_MS[i]!) times.slower[i]!++;
  };
  const prepare = database.prepare.bind(database);
  database.prepare = ((source: string) =>
    new Proxy(prepare(source), {
      get(target, key, receiver) {
        const value: unknown = Reflect.get(target, key, receiver);
        if (typeof value !== "function") return value;
        if (!TIMED.has(key)) return (value as (...a: unknown[]) => unknown).bind(target);
        return (...args: unknown[]) => {
          const start = performance.now();
          try {
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          } finally {
            record(performance.now() - start);
          }
        };
      },
    })) as typeof database.prepare;
}
