import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Kysely, SqliteDialect } from "kysely";
import { afterAll, describe, expect, it } from "vitest";
import { DEFAULT_OPTIONS } from "../../src/options.js";
import { SqliteStore } from "../../src/store/sqlite/store.js";

// The embedded store's per-message statements must cost what their rows cost, not what the backlog does. A
// statement that looks rows up by id must search the primary key: with `time_acked IS NULL` beside the ids,
// SQLite's planner (no ANALYZE statistics, so the table's size does not enter) took the poller index instead
// and scanned every unacked row: 110 ms per claim of 100 rows at 1,000,000 unacked rows, and a drain of
// 500 msg/s. The store runs on a Kysely that records each statement; each one is then explained.
const dir = mkdtempSync(join(tmpdir(), "tablemq-sqlite-plans-"));
const database = new Database(join(dir, "plans.db"));
database.defaultSafeIntegers(true);
const seen: Array<{ sql: string; parameters: readonly unknown[] }> = [];
const db = new Kysely<any>({
  dialect: new SqliteDialect({ database }),
  log: (event) => {
    if (event.level === "query") seen.push({ sql: event.query.sql, parameters: event.query.parameters });
  },
});
const store = new SqliteStore(db, join(dir, "plans.db"));
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const spec = { baseDelayMs: 30_000, minBackoffMs: 1_000, maxBackoffMs: 0, jitter: 1, incrementEpoch: true };

function plan(statement: { sql: string; parameters: readonly unknown[] }): string[] {
  const rows = database.prepare(`EXPLAIN QUERY PLAN ${statement.sql}`).all(...(statement.parameters as unknown[])) as Array<{
    detail: string;
  }>;
  return rows.map((r) => r.detail);
}

describe("SqliteStore statements by id", () => {
  it("search the primary key, never the poller index", async () => {
    const table = "plans";
    await store.createTable(table, { ...DEFAULT_OPTIONS });
    const now = Date.now();
    const ids = Array.from({ length: 20 }, (_, i) => String(1000 + i));
    await store.insertMessages(
      table,
      ids.map((id) => ({ id, priority: 50, timeNext: now - 1, payload: "{}" })),
    );
    seen.length = 0;
    const claimed = await store.claim(
      table,
      ids.slice(0, 10).map((id) => ({ id, epoch: 0 })),
      now,
      spec,
      0,
    );
    expect(claimed).toHaveLength(10);
    await store.updateDeliveries(
      table,
      claimed.slice(0, 2).map((id) => ({ id, epoch: 0 })),
      now,
      { kind: "extend", byMs: 60_000 },
    );
    await store.ack(table, claimed.slice(2, 4), now);
    await store.reschedule(table, claimed.slice(4, 6), now, 5_000);
    await store.settleGroups(table, [{ ids: claimed.slice(6, 7), change: { kind: "ack" }, nowMs: now }]);
    await store.dueTimes(table, now, 10, claimed.slice(4, 6));
    await store.deadLetter(table, ids.slice(10, 12), 0, "plans", now);
    await store.deadLetterDeliveries(
      table,
      claimed.slice(7, 8).map((id) => ({ id, epoch: 0 })),
      "plans",
      now,
    );

    const byId = seen.filter((s) => /\bid IN \(/i.test(s.sql) && /^\s*(SELECT|UPDATE|DELETE|INSERT)/i.test(s.sql));
    expect(byId.length).toBeGreaterThanOrEqual(8);
    for (const statement of byId) {
      const lines = plan(statement).filter((line) => new RegExp(`\\b${table}\\b`).test(line));
      expect(lines, statement.sql).not.toHaveLength(0);
      for (const line of lines) expect(line, statement.sql).toMatch(/USING INTEGER PRIMARY KEY/);
    }
  });
});
