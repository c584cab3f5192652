/**
 * `tablemq migrate` (issue 28): a user outgrows the embedded store and moves to MySQL without losing
 * anything. The source is a SQLite file with two tables in every state (due, delayed, in flight, acked,
 * dead) and a webhook; after the migration the MySQL database serves the same queues.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { run } from "../../src/cli/main.js";
import { resolveOptions } from "../../src/options.js";
import { createMysqlStore, type MysqlStore } from "../../src/store/mysql/store.js";
import { createSqliteStore, type SqliteStore } from "../../src/store/sqlite/store.js";
import type { MessageStore } from "../../src/store/types.js";
import { captureIo } from "../support/cli-io.js";
import { describeWithDatabase, useOwnDatabase } from "../support/database.js";

const NOW = Date.now();

describeWithDatabase("tablemq migrate, from the embedded store to MySQL", () => {
  const target = useOwnDatabase("migrate_e2e");
  const dir = mkdtempSync(join(tmpdir(), "tablemq-migrate-"));
  const sourceUrl = `sqlite:${join(dir, "tablemq.db")}`;
  let mysql: MysqlStore;

  beforeAll(async () => {
    const source = createSqliteStore(join(dir, "tablemq.db"));
    try {
      await source.createTable("orders", resolveOptions({ ackWaitMs: 5_000, batchSize: 7 }));
      await source.createTable("emails", resolveOptions({ maxAttempts: 3 }));
      await source.insertMessages("orders", [
        { id: "1", priority: 10, timeNext: NOW - 1_000, payload: '{"n":1,"big":12345678901234567890}' },
        { id: "2", priority: 50, timeNext: NOW + 60_000, payload: '"later"' },
        { id: "3", priority: 50, timeNext: NOW - 1_000, payload: "[1,2.50,3]" },
        { id: "18446744073709551615", priority: 255, timeNext: NOW - 1_000, payload: "null" },
      ]);
      await source.ack("orders", ["3"], NOW); // acked: not moved
      await source.claim(
        "orders",
        [{ id: "1", epoch: 0 }],
        NOW,
        { baseDelayMs: 5_000, minBackoffMs: 0, maxBackoffMs: 0, jitter: 1, incrementEpoch: true },
        0,
      ); // in flight
      await source.insertMessages("emails", [
        { id: "10", priority: 50, timeNext: NOW - 1_000, payload: '{"to":"a"}', epoch: 3 },
        { id: "11", priority: 50, timeNext: NOW - 1_000, payload: '{"to":"b"}' },
      ]);
      await source.deadLetter("emails", ["10"], 3, "bounced: mailbox full", NOW);
      await source.putWebhook({
        table: "emails",
        name: "sender",
        url: "http://127.0.0.1:9/hook",
        batchSize: 5,
        timeoutMs: 1_000,
        createdAt: NOW,
        updatedAt: NOW,
      });
    } finally {
      await source.close();
    }
    mysql = createMysqlStore(target.url, { connectionLimit: 2 });
  });
  afterAll(async () => {
    await mysql?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const migrateCli = async (from = sourceUrl, to = target.url) => {
    const t = captureIo();
    const code = await run(["migrate", "--from", from, "--to", to], t.io);
    return { code, out: t.out(), err: t.err() };
  };
  const contents = async (store: MessageStore, table: string) =>
    (await store.browse(table, { order: "newest", limit: 100 }, NOW)).messages.map(({ id, priority, epoch, dueAt, payload, state }) => ({
      id,
      priority,
      epoch,
      dueAt,
      payload,
      state,
    }));

  it("copies the tables with their options, the unacked messages as they were, the dead letters and the webhooks", async () => {
    const before = createSqliteStore(join(dir, "tablemq.db"));
    const expected = { orders: await contents(before, "orders"), emails: await contents(before, "emails") };
    await before.close();
    expect(expected.orders.map((m) => m.state)).toEqual(["ready", "delayed", "inFlight"]);

    const res = await migrateCli();
    expect(res.err).toBe("");
    expect(res.code).toBe(0);
    const lines = res.out
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toEqual([
      { table: "emails", created: true, messages: 1, deadLetters: 1, existing: 0 },
      { table: "orders", created: true, messages: 3, deadLetters: 0, existing: 0 },
      { migrated: { tables: 2, messages: 4, deadLetters: 1, existing: 0, webhooks: 1 } },
    ]);

    const tables = await mysql.discoverTables();
    expect(tables.find((t) => t.name === "orders")?.options).toMatchObject({ ackWaitMs: 5_000, batchSize: 7 });
    expect(tables.find((t) => t.name === "emails")?.options).toMatchObject({ maxAttempts: 3 });
    expect(await contents(mysql, "orders")).toEqual(expected.orders);
    expect(await contents(mysql, "emails")).toEqual(expected.emails);
    const dead = await mysql.listDead("emails", 10);
    expect(dead.messages).toMatchObject([{ id: "10", epoch: 3, payload: '{"to":"a"}', reason: "bounced: mailbox full" }]);
    expect(await mysql.listWebhooks()).toMatchObject([{ table: "emails", name: "sender", url: "http://127.0.0.1:9/hook", batchSize: 5 }]);
  });

  it("run again, changes nothing and says what the target had already", async () => {
    const res = await migrateCli();
    expect(res.code).toBe(0);
    const last = JSON.parse(res.out.trim().split("\n").at(-1)!) as { migrated: Record<string, number> };
    expect(last.migrated).toMatchObject({ tables: 2, messages: 0, existing: 4 });
    expect((await contents(mysql, "orders")).length).toBe(3);
  });

  it("refuses a source a server holds, and bad or equal URLs, with the reason", async () => {
    const holder: SqliteStore = createSqliteStore(join(dir, "tablemq.db"));
    try {
      const res = await migrateCli();
      expect(res.code).toBe(1);
      expect(res.err).toContain("is in use by another process");
    } finally {
      await holder.close();
    }
    expect((await migrateCli(sourceUrl, sourceUrl)).err).toContain("--from and --to name the same database");
    const bad = await migrateCli("postgres://x", target.url);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("--from must start with mysql:// or sqlite:");
  });
});
