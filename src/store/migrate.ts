/**
 * Moving a database's queues to another store (`tablemq migrate`), through the MessageStore interface, so
 * any store moves to any other (the usual way: from the embedded SQLite store to MySQL, outgrowing the
 * default). Copied, in this order: each message table with its options; its unacked messages, with their
 * priority, due time and epoch (a message in flight keeps its lease, so it comes back when it would have);
 * its dead letters, with their reason (they die again in the target: their time of death becomes now); and
 * the webhooks. Acked messages are not copied.
 *
 * Idempotent: a table the target has already is kept with its options, and a message or dead letter whose
 * id is there already is skipped (counted as `existing`), so a migration cut short is finished by running it
 * again. The source is only read; run it with the servers stopped (a SQLite source is locked by its server,
 * and the open fails while one runs), then point the servers at the target.
 */
import type { MessageStore, WebhookStore } from "./types.js";

type Store = MessageStore & WebhookStore;

/** Rows per read and per write. */
const PAGE = 500;

export interface TableMigration {
  table: string;
  /** False when the target had the table already (its options were kept). */
  created: boolean;
  messages: number;
  deadLetters: number;
  /** Messages and dead letters whose id the target had already: left as they were there. */
  existing: number;
}

export interface MigrationReport {
  tables: TableMigration[];
  webhooks: number;
}

export async function migrate(
  from: Store,
  to: Store,
  opts: { nowMs: () => number; onTable?: (t: TableMigration) => void },
): Promise<MigrationReport> {
  const report: MigrationReport = { tables: [], webhooks: 0 };
  for (const { name, options } of await from.discoverTables()) {
    const t: TableMigration = { table: name, created: await to.createTable(name, options), messages: 0, deadLetters: 0, existing: 0 };
    await copyMessages(from, to, t, opts.nowMs);
    await copyDeadLetters(from, to, t, opts.nowMs);
    report.tables.push(t);
    opts.onTable?.(t);
  }
  for (const webhook of await from.listWebhooks()) {
    await to.putWebhook(webhook);
    report.webhooks++;
  }
  return report;
}

async function copyMessages(from: Store, to: Store, t: TableMigration, nowMs: () => number): Promise<void> {
  let cursor: string | undefined;
  do {
    const page = await from.browse(t.table, { order: "newest", limit: PAGE, ...(cursor === undefined ? {} : { cursor }) }, nowMs());
    if (page.messages.length > 0) {
      const { inserted, duplicates } = await to.insertMessages(
        t.table,
        page.messages.map((m) => ({ id: m.id, priority: m.priority, timeNext: m.dueAt, epoch: m.epoch, payload: m.payload })),
      );
      t.messages += inserted.length;
      t.existing += duplicates.length;
    }
    cursor = page.next;
  } while (cursor !== undefined);
}

/** Each dead letter is written as a message and dead-lettered again with its reason (one move per reason). */
async function copyDeadLetters(from: Store, to: Store, t: TableMigration, nowMs: () => number): Promise<void> {
  let cursor: string | undefined;
  do {
    const page = await from.listDead(t.table, PAGE, cursor);
    const dead = page.messages;
    if (dead.length > 0) {
      const now = nowMs();
      const { inserted, duplicates } = await to.insertMessages(
        t.table,
        dead.map((m) => ({ id: m.id, priority: m.priority, timeNext: now + DAY_MS, epoch: m.epoch, payload: m.payload })),
      );
      t.existing += duplicates.length;
      const fresh = new Set(inserted);
      const byReason = new Map<string, string[]>();
      for (const m of dead) if (fresh.has(m.id)) byReason.set(m.reason, [...(byReason.get(m.reason) ?? []), m.id]);
      for (const [reason, ids] of byReason) t.deadLetters += (await to.deadLetter(t.table, ids, 0, reason, nowMs())).length;
    }
    cursor = page.next;
  } while (cursor !== undefined);
}

/** A dead letter on its way is written due a day later, so no server delivers it between the two writes. */
const DAY_MS = 86_400_000;
