/**
 * What `tablemq/sql` runs its statements on: the application's own connection, as it is, so the statements
 * join whatever transaction the application has open there. Two kinds, the two MySQL clients a tablemq user
 * has: a Kysely instance or transaction (`Kysely<DB>`, `Transaction<DB>`) on MySQL, and a mysql2 connection
 * from its promise API (`mysql2/promise`'s `createConnection()`, or `pool.getConnection()`). A mysql2
 * promise pool works too, outside any transaction: each statement on a connection of the pool.
 *
 * A mysql2 connection is wrapped in a Kysely of our own whose "pool" hands out only that connection and
 * never closes it; the wrapper is kept per connection (a WeakMap), so it is made once.
 */
import { Kysely, MysqlDialect, type MysqlPool, type MysqlPoolConnection } from "kysely";
import type { Connection, Pool } from "mysql2/promise";

/** What `tablemq/sql` uses of a mysql2 promise connection: its callback connection (not in mysql2's typings). */
interface CallbackConnection {
  connection: {
    query(sql: string, values: unknown[], callback: (err: unknown, result: unknown) => void): unknown;
  };
}

/** A Kysely (or Kysely transaction) on MySQL or MariaDB, whatever its database type. */
export interface KyselyLike {
  selectFrom: unknown;
  executeQuery: unknown;
}

/** What `tablemq/sql` uses of a mysql2 promise pool: its callback pool (not in mysql2's typings). */
interface CallbackPool {
  pool: MysqlPool;
}

export type SqlExecutor = KyselyLike | Connection | Pool;

const wrappers = new WeakMap<object, Kysely<any>>();

/** The Kysely that runs statements on `executor`'s connection (and in its transaction, if one is open). */
export function kyselyOf(executor: SqlExecutor): Kysely<any> {
  if (isKysely(executor)) return executor as unknown as Kysely<any>;
  const pool = isMysql2(executor) ? onePool(executor) : isMysql2Pool(executor) ? executor.pool : undefined;
  if (pool) {
    let db = wrappers.get(executor);
    if (!db) {
      db = new Kysely<any>({ dialect: new MysqlDialect({ pool }) });
      wrappers.set(executor, db);
    }
    return db;
  }
  throw new TypeError("tablemq/sql: expected a Kysely instance or transaction, or a mysql2 promise connection or pool");
}

function isKysely(value: unknown): value is KyselyLike {
  const v = value as Partial<KyselyLike> | null;
  return typeof v === "object" && v !== null && typeof v.selectFrom === "function" && typeof v.executeQuery === "function";
}

interface QueryWithoutValues {
  query(sql: string, callback: (err: unknown, result: unknown) => void): unknown;
}

function isMysql2(value: unknown): value is CallbackConnection {
  const v = value as Partial<CallbackConnection> | null;
  return typeof v === "object" && v !== null && typeof v.connection?.query === "function";
}

function isMysql2Pool(value: unknown): value is CallbackPool {
  const v = value as Partial<CallbackPool> | null;
  return typeof v === "object" && v !== null && typeof v.pool?.getConnection === "function";
}

/** A pool of exactly the application's connection: lent without being taken, never ended. */
function onePool(executor: CallbackConnection): MysqlPool {
  // Kysely only calls query with a callback (it does not stream here). tablemq/sql's statements carry their
  // values as checked literals: without parameters, mysql2 is not asked to scan the text for placeholders.
  const lent = {
    query: (sql: string, parameters: unknown[], callback: (error: unknown, result: unknown) => void) =>
      void (parameters.length === 0
        ? (executor.connection as unknown as QueryWithoutValues).query(sql, callback)
        : executor.connection.query(sql, parameters, callback)),
    release: () => {},
  } as MysqlPoolConnection;
  return {
    getConnection: (callback) => callback(null, lent),
    end: (callback) => callback(null),
  };
}
