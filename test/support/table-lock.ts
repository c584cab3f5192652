import { sql, type Kysely } from "kysely";
import { createConnection } from "mysql2/promise";
import { parseMysqlUrl } from "../../src/store/mysql/connect.js";
import { waitUntil } from "./wait.js";

export interface TableLock {
  /** UNLOCK TABLES, and the session ends. */
  release(): Promise<void>;
}

/**
 * Holds `LOCK TABLES <table> WRITE` in a session of its own (straight to the database, not through a
 * proxy): a statement of anyone else on the table waits inside the database until release(). With the
 * proxy cut meanwhile, that is a statement sent whose connection is lost while it runs.
 */
export async function lockTable(url: string, table: string): Promise<TableLock> {
  const { host, port, user, password, database } = parseMysqlUrl(url);
  const session = await createConnection({ host, port, user, password, database });
  await session.query(`LOCK TABLES \`${table}\` WRITE`);
  return {
    async release() {
      await session.query("UNLOCK TABLES");
      await session.end();
    },
  };
}

/** Resolves once some session runs a statement naming `table` that waits for a table lock. */
export async function waitForLockWait(db: Kysely<any>, table: string, statement = "INSERT", timeoutMs = 5_000): Promise<void> {
  await waitUntil(
    async () => {
      const { rows } = await sql<{ n: number }>`
        SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST
        WHERE ID <> CONNECTION_ID() AND STATE LIKE 'Waiting for table%'
          AND INFO LIKE ${`${statement}%${table}%`}`.execute(db);
      return Number(rows[0]?.n) > 0;
    },
    `a ${statement} on ${table} waiting for the table lock`,
    timeoutMs,
  );
}
