import { sql } from "kysely";
import { afterAll, beforeAll, expect, it } from "vitest";
import { resolveOptions } from "../../src/options.js";
import { createMysqlStore, type MysqlStore } from "../../src/store/mysql/store.js";
import { WEBHOOKS_TABLE } from "../../src/store/mysql/webhooks.js";
import type { WebhookConfig } from "../../src/store/types.js";
import { describeWithDatabase, useOwnDatabase } from "../support/database.js";

const hook = (table: string, name: string, over: Partial<WebhookConfig> = {}): WebhookConfig => ({
  table,
  name,
  url: "https://example.test/hook?x=1",
  batchSize: 10,
  timeoutMs: 5_000,
  createdAt: 1_700_000_000_000,
  updatedAt: 1_700_000_000_000,
  ...over,
});

describeWithDatabase("MysqlStore webhooks", () => {
  const database = useOwnDatabase("webhook_store");
  let store: MysqlStore;
  beforeAll(async () => {
    store = createMysqlStore(database.url, { connectionLimit: 2 });
    await store.createTable("orders", resolveOptions());
    await store.createTable("billing", resolveOptions());
  });
  afterAll(async () => {
    await store?.close();
  });

  it("makes its table on first use, and discovery does not take it for a message table", async () => {
    expect(await store.listWebhooks()).toEqual([]);
    const { rows } = await sql<{ n: number }>`
      SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ${WEBHOOKS_TABLE}`.execute(
      store.db,
    );
    expect(Number(rows[0]!.n)).toBe(1);
    expect((await store.discoverTables()).map((t) => t.name)).toEqual(["billing", "orders"]);
    expect(await store.createTable(WEBHOOKS_TABLE, resolveOptions())).toBe(false);
  });

  it("creates, replaces (keeping createdAt), lists in order and deletes", async () => {
    expect(await store.putWebhook(hook("orders", "b", { secret: "s3cret" }))).toBe(true);
    expect(await store.putWebhook(hook("orders", "a"))).toBe(true);
    // Replaced with identical values at the same time: still reported as a replacement.
    expect(await store.putWebhook(hook("orders", "a"))).toBe(false);
    expect(
      await store.putWebhook(
        hook("orders", "b", { url: "http://x.test/", batchSize: 3, timeoutMs: 100, createdAt: 5, updatedAt: 1_800_000_000_000 }),
      ),
    ).toBe(false);
    const list = await store.listWebhooks();
    expect(list.map((c) => c.name)).toEqual(["a", "b"]);
    expect(list[1]).toEqual({
      table: "orders",
      name: "b",
      url: "http://x.test/",
      batchSize: 3,
      timeoutMs: 100,
      createdAt: 1_700_000_000_000,
      updatedAt: 1_800_000_000_000,
    });
    expect(await store.deleteWebhook("orders", "a")).toBe(true);
    expect(await store.deleteWebhook("orders", "a")).toBe(false);
    expect((await store.listWebhooks()).map((c) => c.name)).toEqual(["b"]);
    await store.deleteWebhook("orders", "b");
  });

  it("deletes the webhooks of missing tables only, checked in the statement", async () => {
    await store.putWebhook(hook("orders", "kept"));
    await store.putWebhook(hook("billing", "dropped"));
    await store.putWebhook(hook("never_made", "orphan"));
    expect(await store.deleteWebhooksOfMissingTables("orders")).toBe(0);
    await store.dropTable("billing");
    expect(await store.deleteWebhooksOfMissingTables("billing")).toBe(1);
    expect(await store.deleteWebhooksOfMissingTables()).toBe(1);
    expect((await store.listWebhooks()).map((c) => `${c.table}/${c.name}`)).toEqual(["orders/kept"]);
  });

  it("makes its table again if it was dropped behind its back", async () => {
    await sql`DROP TABLE ${sql.table(WEBHOOKS_TABLE)}`.execute(store.db);
    expect(await store.putWebhook(hook("orders", "again"))).toBe(true);
    expect((await store.listWebhooks()).map((c) => c.name)).toEqual(["again"]);
  });
});
