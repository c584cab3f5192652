/** The store a database URL (urls.ts) names, opened. */
import { createMysqlStore, type MysqlStoreOptions, type MysqlStore } from "./mysql/store.js";
import { createSqliteStore, type SqliteStore } from "./sqlite/store.js";
import { SqliteThreadStore } from "./sqlite/thread-store.js";
import { sqlitePath } from "./urls.js";

export type OpenedStore = { kind: "mysql"; store: MysqlStore } | { kind: "sqlite"; store: SqliteStore | SqliteThreadStore; path: string };

export interface OpenStoreOptions {
  mysql?: MysqlStoreOptions;
  /** The embedded store on a worker thread of its own (the default), or on the caller's. */
  sqliteThread?: "worker" | "main";
}

export async function openStore(url: string, opts: OpenStoreOptions = {}): Promise<OpenedStore> {
  const path = sqlitePath(url);
  if (path !== undefined) {
    const store = opts.sqliteThread === "main" ? createSqliteStore(path) : await SqliteThreadStore.open(path);
    return { kind: "sqlite", store, path: store.path };
  }
  if (!url.startsWith("mysql://")) throw new Error("a database URL starts with mysql:// or sqlite:");
  return { kind: "mysql", store: createMysqlStore(url, opts.mysql) };
}
