/** The store a database URL (urls.ts) names, opened. */
import { createMysqlStore, type MysqlStoreOptions, type MysqlStore } from "./mysql/store.js";
import { sqlitePath } from "./urls.js";
import { createSqliteStore, type SqliteStore } from "./sqlite/store.js";

export type OpenedStore = { kind: "mysql"; store: MysqlStore } | { kind: "sqlite"; store: SqliteStore; path: string };

export function openStore(url: string, mysql: MysqlStoreOptions = {}): OpenedStore {
  const path = sqlitePath(url);
  if (path !== undefined) {
    const store = createSqliteStore(path);
    return { kind: "sqlite", store, path: store.path };
  }
  if (!url.startsWith("mysql://")) throw new Error("a database URL starts with mysql:// or sqlite:");
  return { kind: "mysql", store: createMysqlStore(url, mysql) };
}
