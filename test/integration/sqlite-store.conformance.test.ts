import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { createSqliteStore } from "../../src/store/sqlite/store.js";
import { SqliteThreadStore } from "../../src/store/sqlite/thread-store.js";
import { describeStoreConformance } from "../support/store-conformance.js";

// The embedded store keeps the contract the MySQL store does, on a real file: on the caller's thread, and on
// a worker thread of its own behind SqliteThreadStore (the server's default), where every value and error
// crosses between threads.
const dir = mkdtempSync(join(tmpdir(), "tablemq-sqlite-conformance-"));
const store = createSqliteStore(join(dir, "main.db"));
let threaded: SqliteThreadStore | undefined;
beforeAll(async () => {
  threaded = await SqliteThreadStore.open(join(dir, "worker.db"));
});
afterAll(async () => {
  await store.close();
  await threaded?.close();
  rmSync(dir, { recursive: true, force: true });
});
let n = 0;
describeStoreConformance("SqliteStore", () => ({ store, newTable: (prefix) => `${prefix}_${++n}` }));
describeStoreConformance("SqliteThreadStore", () => ({ store: threaded!, newTable: (prefix) => `${prefix}_${++n}` }));
