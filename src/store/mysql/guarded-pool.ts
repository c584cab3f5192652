/**
 * The pool kysely runs every statement on: mysql2's, with what a hung or vanished database needs
 * (RELIABILITY.md, problems 1 and 8).
 *
 * Bounded: a statement fails when it has no connection, or no answer, `timeoutMs` after it asked for a
 * connection. mysql2's own per-query `timeout` option only calls back early: its command stays the
 * connection's current one, kysely hands the connection back to the pool, and the next statement queues
 * behind the unanswered one without its timer even started (mysql2 starts it when the command starts).
 * It also calls back twice when the connection is lost before its timer fires. So the timer here is ours,
 * and a connection whose statement timed out is destroyed (mysql2 then drops it from the pool and serves
 * the next waiter with a new one), never pooled again.
 *
 * Labelled: a failure says whether the statement can have run.
 * - No connection (refused, handshake failed or timed out, none free in time, pool closed): it was never
 *   sent → UnavailableError, nothing was written. The pool's queue limit → OverloadedError.
 * - The connection was lost, or the answer did not come in time, after the statement was sent: it may
 *   have committed (a lost connection does not stop a statement the server already runs) →
 *   OutcomeUnknownError.
 * - An error the server answered (a duplicate key, a lock wait timeout, a missing table) passes through
 *   unchanged: the statement ran and failed, which rolled it back, and the store reads its errno.
 */
import type { MysqlPool, MysqlPoolConnection, MysqlQueryResult } from "kysely";
import type { Pool, PoolConnection } from "mysql2";
import { OutcomeUnknownError, OverloadedError, UnavailableError } from "../../errors.js";

type Callback = (error: unknown, result: MysqlQueryResult) => void;

/** Wraps a mysql2 pool for kysely's MysqlDialect; see the module comment. */
export function guardPool(pool: Pool, timeoutMs: number): MysqlPool {
  return {
    getConnection(callback) {
      const deadline = Date.now() + timeoutMs;
      let waiting = true;
      const timer = setTimeout(() => {
        waiting = false;
        callback(new UnavailableError(`no database connection within ${timeoutMs} ms`), undefined as never);
      }, timeoutMs);
      pool.getConnection((err, connection) => {
        if (!waiting) {
          connection?.release(); // came too late for this statement: healthy, so back to the pool
          return;
        }
        waiting = false;
        clearTimeout(timer);
        if (err) callback(acquireError(err), undefined as never);
        else callback(null, guardConnection(connection, deadline, timeoutMs));
      });
    },
    end: (callback) => pool.end(callback),
  };
}

function guardConnection(raw: PoolConnection, deadline: number, timeoutMs: number): MysqlPoolConnection {
  function query(sql: string, parameters: unknown[], callback?: Callback): unknown {
    if (!callback) return raw.query(sql, parameters); // streaming: the store does not stream
    const left = deadline - Date.now();
    if (left <= 0) {
      process.nextTick(() => callback(new UnavailableError(`no database connection within ${timeoutMs} ms`), undefined as never));
      return;
    }
    let settled = false;
    const settle = (err: unknown, result?: MysqlQueryResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      callback(err, result as MysqlQueryResult);
    };
    const timer = setTimeout(() => {
      discard(raw);
      settle(new OutcomeUnknownError(`the database did not answer within ${timeoutMs} ms`));
    }, left);
    try {
      raw.query(sql, parameters, (err, result) => {
        if (!err) return settle(null, result as MysqlQueryResult);
        if (!isConnectionFailure(err)) return settle(err);
        discard(raw);
        settle(
          neverSent(err)
            ? new UnavailableError(`the database connection was closed: ${describe(err)}`, { cause: err })
            : new OutcomeUnknownError(`the database connection was lost after the statement was sent (${describe(err)})`, [], {
                cause: err,
              }),
        );
      });
    } catch (err) {
      settled = true; // thrown before anything was sent (e.g. bad parameters): kysely rejects with it
      clearTimeout(timer);
      throw err;
    }
  }
  return { query: query as MysqlPoolConnection["query"], release: () => raw.release() };
}

/**
 * Out of the pool for good. mysql2's destroy() only ends the socket politely (a FIN a hung peer may never
 * answer), so the socket is destroyed too.
 */
function discard(raw: PoolConnection): void {
  raw.destroy();
  (raw as unknown as { stream?: { destroy?: () => void } }).stream?.destroy?.();
}

interface DriverError {
  code?: string;
  fatal?: boolean;
  message?: string;
}

/** mysql2 marks every error that ends the connection (network, protocol, server gone) as fatal. */
function isConnectionFailure(err: unknown): boolean {
  return (err as DriverError).fatal === true;
}

/**
 * mysql2 refuses a command on a connection it already knows is closed, without writing it; a command it
 * writes to a socket already ended (a connection destroyed before its turn, e.g. when its session setup
 * failed) fails with ERR_STREAM_WRITE_AFTER_END, and nothing of it leaves the process.
 */
function neverSent(err: unknown): boolean {
  const e = err as DriverError;
  return e.code === "ERR_STREAM_WRITE_AFTER_END" || /^Can't add new command when connection is in closed state/.test(e.message ?? "");
}

function acquireError(err: unknown): Error {
  if ((err as DriverError).message === "Queue limit reached.") {
    return new OverloadedError("too many requests are waiting for the database; retry later");
  }
  return new UnavailableError(`cannot connect to the database: ${describe(err)}`, { cause: err });
}

function describe(err: unknown): string {
  const e = err as DriverError;
  return e.code && e.message && !e.message.includes(e.code) ? `${e.code}: ${e.message}` : (e.message ?? e.code ?? String(err));
}
