/**
 * Names of the databases a test run makes. Every `vitest run` gets a run id, `<yymmddhhmm>_<6 hex>` (the time
 * in UTC by the database server's clock, then a random part), made once by test/support/global-setup.ts, and
 * every database it makes is named `tablemq_<run id>` (the run's shared database) or
 * `tablemq_<run id>_<name>` (a test file's own). So two runs against one server never share a database,
 * the global teardown can drop exactly its own, and a later run can tell a crashed run's leftovers by age.
 *
 * Nothing else is named like that: `tablemq_bench` or the pre-run-id `tablemq_engine_it` do not match.
 * Plain functions, no vitest: used both by the global setup and inside the test workers.
 */
import { randomBytes } from "node:crypto";

export const DATABASE_PREFIX = "tablemq_";
/** MariaDB's and MySQL's limit on a database name. */
export const MAX_DATABASE_NAME = 64;
/** A leftover of a run started this long ago is dropped by the next run's global setup. */
export const STALE_AFTER_S = 6 * 3600;

const RUN_ID = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})_[0-9a-f]{6}$/;
const RUN_DATABASE = /^tablemq_(\d{10}_[0-9a-f]{6})(?:_[a-z0-9_]+)?$/;

/** A new run id for a run started at `nowS` (seconds since the epoch). */
export function newRunId(nowS: number, random = randomBytes(3).toString("hex")): string {
  const d = new Date(nowS * 1000);
  const two = (n: number) => String(n).padStart(2, "0");
  const id = `${two(d.getUTCFullYear() % 100)}${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}_${random}`;
  if (!RUN_ID.test(id)) throw new Error(`bad run id ${JSON.stringify(id)}`);
  return id;
}

/** When the run started (seconds since the epoch, to the minute); undefined for anything not a run id. */
export function runIdStart(runId: string): number | undefined {
  const m = RUN_ID.exec(runId);
  if (!m) return undefined;
  const [yy, mo, dd, hh, mi] = m.slice(1).map(Number) as [number, number, number, number, number];
  return Date.UTC(2000 + yy, mo - 1, dd, hh, mi) / 1000;
}

/** `tablemq_<run id>`, or `tablemq_<run id>_<name>` for a test file's own database. */
export function runDatabaseName(runId: string, name?: string): string {
  if (!RUN_ID.test(runId)) throw new Error(`bad run id ${JSON.stringify(runId)}`);
  if (name === undefined) return `${DATABASE_PREFIX}${runId}`;
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`test database name ${JSON.stringify(name)}: use a-z, 0-9 and _ only`);
  const full = `${DATABASE_PREFIX}${runId}_${name}`;
  if (full.length > MAX_DATABASE_NAME) {
    const room = MAX_DATABASE_NAME - (full.length - name.length);
    throw new Error(`test database name ${JSON.stringify(name)} is too long: at most ${room} characters`);
  }
  return full;
}

/** The run id a database of some run belongs to; undefined for any other database. */
export function runOfDatabase(database: string): string | undefined {
  return RUN_DATABASE.exec(database)?.[1];
}

/** Whether `database` belongs to a run started more than `maxAgeS` before `nowS` (a crashed run's leftover). */
export function isStaleRunDatabase(database: string, nowS: number, maxAgeS = STALE_AFTER_S): boolean {
  const run = runOfDatabase(database);
  const started = run === undefined ? undefined : runIdStart(run);
  return started !== undefined && nowS - started > maxAgeS;
}
