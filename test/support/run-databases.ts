/**
 * A test run's databases on the server (names: ./run-id.ts): made and swept by ./global-setup.ts, dropped at
 * the end of the run. Also a script: `node --import tsx test/support/run-databases.ts <run id>`, with the
 * server URL in $TABLEMQ_DROP_RUN_URL, drops that run's databases; the global setup starts it detached when
 * vitest exits without its teardown (Ctrl-C).
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createConnection, type Connection } from "mysql2/promise";
import { parseMysqlUrl } from "../../src/store/mysql/connect.js";
import { STALE_AFTER_S, isStaleRunDatabase, newRunId, runDatabaseName, runOfDatabase } from "./run-id.js";

const CONNECT_MS = 5_000;
const URL_ENV = "TABLEMQ_DROP_RUN_URL";

export interface Run {
  id: string;
  /** `tablemq_<run id>`, the run's shared database. */
  database: string;
  /** The server URL with that database. */
  url: string;
  /** Databases of runs started more than STALE_AFTER_S ago, dropped. */
  staleDropped: string[];
}

/** Picks the run id by the server's clock, drops crashed runs' leftovers, and makes the run's database. */
export async function startRun(serverUrl: string): Promise<Run> {
  const conn = await connect(serverUrl);
  try {
    const [rows] = await conn.query("SELECT UNIX_TIMESTAMP() AS now");
    const now = Math.floor(Number((rows as Array<{ now: number | string }>)[0]!.now));
    const staleDropped: string[] = [];
    for (const name of await runDatabases(conn)) {
      if (!isStaleRunDatabase(name, now, STALE_AFTER_S)) continue;
      await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
      staleDropped.push(name);
    }
    const id = newRunId(now);
    const database = runDatabaseName(id);
    await conn.query(`CREATE DATABASE \`${database}\``);
    const url = new URL(serverUrl);
    url.pathname = `/${database}`;
    return { id, database, url: url.toString(), staleDropped };
  } finally {
    await conn.end();
  }
}

/** Drops every database of run `runId`; never throws: returns what it could not drop, and why. */
export async function dropRunDatabases(serverUrl: string, runId: string, lockWaitS = 30): Promise<string[]> {
  const left: string[] = [];
  try {
    const conn = await connect(serverUrl);
    try {
      await conn.query(`SET SESSION lock_wait_timeout = ${Math.floor(lockWaitS)}`);
      for (const name of await runDatabases(conn)) {
        if (runOfDatabase(name) !== runId) continue;
        try {
          await conn.query(`DROP DATABASE IF EXISTS \`${name}\``);
        } catch (err) {
          left.push(`${name} (${message(err)})`);
        }
      }
    } finally {
      await conn.end();
    }
  } catch (err) {
    left.push(`tablemq_${runId}* (${message(err)})`);
  }
  return left;
}

/**
 * Starts this file as a detached process that drops run `runId`'s databases, and returns at once: for the
 * `exit` event, where nothing asynchronous runs any more.
 */
export function dropRunDatabasesLater(serverUrl: string, runId: string): void {
  const self = fileURLToPath(import.meta.url);
  const root = fileURLToPath(new URL("../../", import.meta.url));
  try {
    spawn(process.execPath, ["--import", "tsx", self, runId], {
      cwd: root,
      detached: true,
      stdio: "ignore",
      env: { ...process.env, [URL_ENV]: serverUrl }, // not in argv: it may hold a password
    }).unref();
  } catch {
    // the next run 6 h later drops them
  }
}

/** Every database named like a run's (./run-id.ts), of any run. */
async function runDatabases(conn: Connection): Promise<string[]> {
  const [rows] = await conn.query("SHOW DATABASES LIKE 'tablemq\\_%'");
  return (rows as Array<Record<string, string>>).map((r) => Object.values(r)[0]!).filter((name) => runOfDatabase(name) !== undefined);
}

function connect(url: string): Promise<Connection> {
  const { host, port, user, password, database } = parseMysqlUrl(url);
  return createConnection({ host, port, user, password, database, connectTimeout: CONNECT_MS });
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// As a script (dropRunDatabasesLater): the interrupted run's workers may still hold locks for a moment.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const url = process.env[URL_ENV];
  const runId = process.argv[2];
  if (url && runId && runOfDatabase(runDatabaseName(runId)) === runId) {
    for (let attempt = 0; attempt < 3; attempt++) {
      if ((await dropRunDatabases(url, runId, 20)).length === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
  }
}
