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
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

/** The stores a suite can run on: MySQL/MariaDB (the production store) and the embedded SQLite store. */
export type StoreKind = "mysql" | "sqlite";
export const STORE_KINDS: readonly StoreKind[] = ["mysql", "sqlite"];

/**
 * `describe` once per store, `name (mysql)` and `name (sqlite)`: the MySQL one skips when there is no
 * database (as describeWithDatabase); the SQLite one needs nothing but a temp directory.
 */
export function describeEachStore(name: string, fn: (kind: StoreKind) => void): void {
  for (const kind of STORE_KINDS) describe.skipIf(kind === "mysql" && !hasDatabase())(`${name} (${kind})`, () => fn(kind));
}

/**
 * A database of its own for a describe block on `kind`'s store: useOwnDatabase's on MySQL, or a SQLite file
 * `<name>.db` in a temp directory of its own, removed after the block. Returns its URL.
 */
export function useOwnStoreDatabase(kind: StoreKind, name: string): OwnStoreDatabase {
  if (kind === "mysql") {
    const own = useOwnDatabase(name);
    return {
      get url() {
        return own.url;
      },
      apart: () => own.url,
    };
  }
  let dir = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), `tablemq-${name}-`));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return {
    get url() {
      if (!dir) throw new Error("useOwnStoreDatabase: only available inside tests");
      return `sqlite:${join(dir, `${name}.db`)}`;
    },
    apart(suffix) {
      if (!dir) throw new Error("useOwnStoreDatabase: only available inside tests");
      return `sqlite:${join(dir, `${name}_${suffix}.db`)}`;
    },
  };
}

export interface OwnStoreDatabase {
  readonly url: string;
  /**
   * The URL for a server beside the block's own: on MySQL the same database (servers may share one); on
   * SQLite a file of its own, `suffix` naming it (a SQLite file serves one server at a time).
   */
  apart(suffix: string): string;
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
