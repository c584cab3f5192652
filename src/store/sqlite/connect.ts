/**
 * Opening the embedded store: one SQLite file, served by one process.
 *
 * Durability: WAL with synchronous=FULL, so a statement's (or a transaction's) commit is on disk, WAL
 * synced, before its answer: every 2xx is committed, as on MySQL. One process: beside the file, `<file>.lock`
 * is opened in exclusive locking mode and written, so the process holds its lock until it closes the store
 * or dies (the operating system drops the locks of a dead process). A second server (or `tablemq migrate`)
 * on the same file is refused at start with a reason, instead of sharing it: SQLite serves one node, and
 * several nodes need MySQL. The data file itself stays readable by other processes (WAL readers).
 */
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import Database from "better-sqlite3";
import { Kysely, SqliteDialect } from "kysely";
import { newStatementTimes, type StatementTimes, timeStatements } from "./timing.js";

export interface OpenedSqlite {
  db: Kysely<any>;
  /** The file, resolved. */
  path: string;
  /** Lets go of the file's lock (after the database is closed). */
  unlock(): void;
  /** How long its statements held this thread (timing.ts). */
  times: StatementTimes;
}

/** Opens (creating it and its directory if missing) the SQLite file at `path`, for this process alone. */
export function openSqlite(path: string): OpenedSqlite {
  const file = resolve(path);
  mkdirSync(dirname(file), { recursive: true });
  const lock = lockFile(file);
  let database: Database.Database | undefined;
  const times = newStatementTimes();
  try {
    database = new Database(file);
    database.pragma("journal_mode = WAL");
    database.pragma("synchronous = FULL");
    // Integers come back as BigInt: nanosecond times and ids do not fit a double.
    database.defaultSafeIntegers(true);
    timeStatements(database, times);
  } catch (err) {
    database?.close();
    lock.close();
    throw err;
  }
  return { db: new Kysely<any>({ dialect: new SqliteDialect({ database }) }), path: file, unlock: () => lock.close(), times };
}

/** Takes `<file>.lock` for this process, or throws why not. */
function lockFile(file: string): Database.Database {
  const lock = new Database(`${file}.lock`, { timeout: 0 });
  try {
    lock.pragma("locking_mode = EXCLUSIVE");
    lock.exec("CREATE TABLE IF NOT EXISTS holder (pid INTEGER)");
    lock.prepare("INSERT INTO holder (pid) VALUES (?)").run(process.pid); // a write: the exclusive lock, kept
    lock.exec("DELETE FROM holder WHERE rowid < (SELECT MAX(rowid) FROM holder)");
    return lock;
  } catch (err) {
    lock.close();
    if ((err as { code?: string }).code?.startsWith("SQLITE_BUSY")) {
      throw new Error(
        `${file} is in use by another process (another tablemq server?): the embedded SQLite store serves one node. ` +
          "Stop the other process, or run several nodes on MySQL (TABLEMQ_DATABASE_URL=mysql://...).",
        { cause: err },
      );
    }
    throw err;
  }
}
