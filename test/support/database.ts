/**
 * Helpers for tests that need a real database. The URL comes from test/support/global-setup.ts.
 *
 *   describeWithDatabase("store", () => {
 *     const db = useTestStore();
 *     it("creates", async () => {
 *       const table = db.table("create");           // unique name, dropped after the test
 *       expect(await db.store.createTable(table, resolveOptions())).toBe(true);
 *     });
 *   });
 */
import { randomBytes } from "node:crypto";
import { sql } from "kysely";
import { createConnection } from "mysql2/promise";
import { afterAll, afterEach, beforeAll, describe, inject } from "vitest";
import { parseMysqlUrl } from "../../src/store/mysql/connect.js";
import { createMysqlStore, type MysqlStore } from "../../src/store/mysql/store.js";
import { runDatabaseName } from "./run-id.js";
// The `inject` keys (mysqlUrl, testRunId, faultsDir) are declared in ./global-setup.ts.

/**
 * The URL of this run's own database (`tablemq_<run id>`, made by the global setup), or "" when there is
 * no database.
 */
export function testDatabaseUrl(): string {
  return inject("mysqlUrl") ?? "";
}

/** This run's id (see ./run-id.ts), made once per `vitest run` by the global setup. */
export function testRunId(): string {
  const id = inject("testRunId");
  if (!id) throw new Error("no test run id: run the tests through vitest.config.ts (its globalSetup makes it)");
  return id;
}

export function hasDatabase(): boolean {
  return testDatabaseUrl() !== "";
}

/**
 * `describe` that skips when there is no database. (Under CI a missing database has already failed the
 * run in the global setup, so this never hides a CI failure.)
 */
export function describeWithDatabase(name: string, fn: () => void): void {
  describe.skipIf(!hasDatabase())(name, fn);
}

/** A fresh valid table name, `t_<prefix>_<12 hex>`, at most 63 characters. */
export function uniqueTableName(prefix = "t"): string {
  const clean = prefix
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, "_")
    .slice(0, 40);
  return `t_${clean}_${randomBytes(6).toString("hex")}`;
}

export interface TestStore {
  /** The store, open between beforeAll and afterAll. */
  readonly store: MysqlStore;
  /** A unique table name registered for dropping after the current test (however it gets created). */
  table(prefix?: string): string;
  /** "mariadb" or "mysql", from SELECT VERSION(). */
  readonly flavor: "mariadb" | "mysql";
}

/**
 * Registers hooks in the enclosing describe: opens a MysqlStore before the tests, drops every table
 * named through `table()` after each test, and closes the store at the end.
 */
export function useTestStore(): TestStore {
  let store: MysqlStore | undefined;
  let flavor: "mariadb" | "mysql" = "mysql";
  const tables = new Set<string>();

  beforeAll(async () => {
    store = createMysqlStore(testDatabaseUrl(), { connectionLimit: 4 });
    const { rows } = await sql<{ v: string }>`SELECT VERSION() AS v`.execute(store.db);
    flavor = /mariadb/i.test(rows[0]?.v ?? "") ? "mariadb" : "mysql";
  });
  afterEach(async () => {
    for (const table of tables) await store?.dropTable(table);
    tables.clear();
  });
  afterAll(async () => {
    await store?.close();
    store = undefined;
  });

  return {
    get store() {
      if (!store) throw new Error("useTestStore: the store is only open inside tests");
      return store;
    },
    get flavor() {
      return flavor;
    },
    table(prefix?: string) {
      const name = uniqueTableName(prefix);
      tables.add(name);
      return name;
    },
  };
}

/**
 * A database of its own for one test file (or describe block), `tablemq_<run id>_<name>`: an Engine serves
 * every message table of its database, so engine tests must not see (or purge) the tables of store tests
 * running in parallel. Made empty before the block's tests and dropped after them (the block's other
 * afterAll hooks, registered later, run first: servers and pools are closed by then); the global teardown
 * drops whatever is left. `name` is a-z, 0-9 and _, at most 38 characters. Returns its URL (only valid inside
 * tests / hooks).
 */
export function useOwnDatabase(name: string): { readonly url: string } {
  let url = "";
  let dbName = "";
  beforeAll(async () => {
    const base = new URL(testDatabaseUrl());
    dbName = runDatabaseName(testRunId(), name);
    const admin = createMysqlStore(testDatabaseUrl(), { connectionLimit: 1 });
    try {
      // Only there if this file ran before in this run (watch mode).
      await sql`DROP DATABASE IF EXISTS ${sql.id(dbName)}`.execute(admin.db);
      await sql`CREATE DATABASE ${sql.id(dbName)}`.execute(admin.db);
    } finally {
      await admin.close();
    }
    base.pathname = `/${dbName}`;
    url = base.toString();
  });
  afterAll(async () => {
    if (!dbName) return;
    try {
      const { host, port, user, password, database } = parseMysqlUrl(testDatabaseUrl());
      const admin = await createConnection({ host, port, user, password, database });
      try {
        // Bounded: should something still hold a lock in it, the global teardown drops it at the end.
        await admin.query("SET SESSION lock_wait_timeout = 10");
        await admin.query(`DROP DATABASE IF EXISTS \`${dbName}\``);
      } finally {
        await admin.end();
      }
    } catch (err) {
      process.stderr.write(`[tablemq tests] ${dbName} not dropped yet (the run's teardown will): ${String(err)}\n`);
    }
  });
  return {
    get url() {
      if (!url) throw new Error("useOwnDatabase: only available inside tests");
      return url;
    },
  };
}
