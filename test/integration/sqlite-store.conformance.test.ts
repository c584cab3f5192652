import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { createSqliteStore } from "../../src/store/sqlite/store.js";
import { describeStoreConformance } from "../support/store-conformance.js";

// The embedded store keeps the contract the MySQL store does, on a real file.
const dir = mkdtempSync(join(tmpdir(), "tablemq-sqlite-conformance-"));
const store = createSqliteStore(join(dir, "tablemq.db"));
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});
let n = 0;
describeStoreConformance("SqliteStore", () => ({ store, newTable: (prefix) => `${prefix}_${++n}` }));
