/**
 * MessageStore on SQLite: the embedded store, for development and small single-node deployments (issue 28).
 * One file, opened by this process alone (connect.ts); the same semantics as the MySQL store, whose
 * conformance suite it passes. Times cross the interface as epoch ms and are stored as nanoseconds; ids
 * are decimal strings, stored as keys (keys.ts).
 */
import { sql, type Kysely } from "kysely";
import { TableNotFoundError } from "../../errors.js";
import { MAX_MESSAGE_ID } from "../../ids.js";
import type { TableOptions } from "../../options.js";
import type { ClaimRow, Delivery, NewMessage } from "../../model/messages.js";
import type {
  BackoffSpec,
  BrowsedMessage,
  BrowsePage,
  BrowseQuery,
  DeadLetterPage,
  DeliveryChange,
  DiscoveredTable,
  DueRows,
  FencedResult,
  InsertResult,
  MessageStore,
  RedriveResult,
  SettleGroup,
  SweepQuery,
  SweepResult,
  TableStats,
  WebhookConfig,
  WebhookStore,
} from "../types.js";
import * as browsing from "./browse.js";
import { openSqlite } from "./connect.js";
import { newStatementTimes, type StatementTimes } from "./timing.js";
import * as dead from "./dead-letters.js";
import * as messages from "./messages.js";
import * as tables from "./tables.js";
import * as webhooks from "./webhooks.js";

export class SqliteStore implements MessageStore, WebhookStore {
  private ready: Promise<void> | undefined;

  constructor(
    /** The Kysely instance over the file; close() destroys it. */
    readonly db: Kysely<any>,
    /** The file, resolved. */
    readonly path: string,
    private readonly unlock: () => void = () => {},
    /** How long its statements held the event loop (timing.ts). */
    readonly statementTimes: StatementTimes = newStatementTimes(),
  ) {}

  /** tablemq's own tables, made once (IF NOT EXISTS). */
  private setUp(): Promise<void> {
    return (this.ready ??= (async () => {
      await tables.createTablesTable.execute(this.db);
      await webhooks.createWebhooksTable.execute(this.db);
    })().catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    }));
  }

  private async run<T>(work: () => Promise<T>): Promise<T> {
    await this.setUp();
    return work();
  }

  async discoverTables(): Promise<DiscoveredTable[]> {
    return this.run(() => tables.discoverTables(this.db));
  }

  createTable(table: string, options: TableOptions): Promise<boolean> {
    return this.run(() => tables.createTable(this.db, table, options));
  }

  async alterTableOptions(table: string, options: TableOptions): Promise<void> {
    if (!(await this.run(() => tables.alterTableOptions(this.db, table, options)))) throw new TableNotFoundError(table);
  }

  dropTable(table: string): Promise<boolean> {
    return this.run(() => tables.dropTable(this.db, table));
  }

  describeTable(table: string, nowMs: number): Promise<TableStats> {
    return onTable(table, tables.describeTable(this.db, table, nowMs));
  }

  describeTables(names: readonly string[], nowMs: number): Promise<Map<string, TableStats & { dead: number }>> {
    return onTables(names, tables.describeTables(this.db, names, nowMs));
  }

  sweep(queries: readonly SweepQuery[], nowMs: number): Promise<Map<string, SweepResult>> {
    return onTables(
      queries.map((q) => q.table),
      tables.sweep(this.db, queries, nowMs),
    );
  }

  maxMessageId(): bigint {
    return MAX_MESSAGE_ID;
  }

  insertMessages(table: string, rows: NewMessage[]): Promise<InsertResult> {
    return onTable(table, messages.insertMessages(this.db, table, rows));
  }

  readDue(table: string, nowMs: number, limit: number, maxBytes?: number): Promise<DueRows> {
    return onTable(table, messages.readDue(this.db, table, nowMs, limit, maxBytes));
  }

  /** readDue for another thread: `cut`, a property of the array, would not survive the clone. */
  async readDueCrossing(table: string, nowMs: number, limit: number, maxBytes?: number): Promise<{ rows: DueRows; cut?: boolean }> {
    const rows = await this.readDue(table, nowMs, limit, maxBytes);
    return rows.cut ? { rows: [...rows], cut: true } : { rows: [...rows] };
  }

  /** The statement times since the last take, its longest reset (a window per take: the metrics' scrape). */
  async takeStatementTimes(): Promise<StatementTimes> {
    const taken = { ...this.statementTimes, slower: [...this.statementTimes.slower] };
    this.statementTimes.maxMs = 0;
    return taken;
  }

  claim(table: string, rows: ClaimRow[], nowMs: number, spec: BackoffSpec, nonceNs: number): Promise<string[]> {
    return onTable(table, messages.claim(this.db, table, rows, nowMs, spec, nonceNs));
  }

  reschedule(table: string, ids: string[], nowMs: number, delayMs: number): Promise<number> {
    return onTable(table, messages.settle(this.db, table, ids, { kind: "reschedule", delayMs }, nowMs));
  }

  ack(table: string, ids: string[], nowMs: number): Promise<number> {
    return onTable(table, messages.settle(this.db, table, ids, { kind: "ack" }, nowMs));
  }

  settleGroups(table: string, groups: SettleGroup[]): Promise<number[]> {
    return onTable(table, messages.settleGroups(this.db, table, groups));
  }

  updateDeliveries(table: string, deliveries: Delivery[], nowMs: number, change: DeliveryChange): Promise<FencedResult> {
    return onTable(table, messages.updateDeliveries(this.db, table, deliveries, nowMs, change));
  }

  deadLetter(table: string, ids: string[], minEpoch: number, reason: string, nowMs: number): Promise<string[]> {
    return onTable(table, dead.deadLetter(this.db, table, ids, minEpoch, reason, nowMs));
  }

  deadLetterDeliveries(table: string, deliveries: Delivery[], reason: string, nowMs: number): Promise<FencedResult> {
    return onTable(table, dead.deadLetterDeliveries(this.db, table, deliveries, reason, nowMs));
  }

  listDead(table: string, limit: number, cursor?: string): Promise<DeadLetterPage> {
    return dead.listDead(this.db, table, limit, cursor);
  }

  countDead(table: string): Promise<number> {
    return dead.countDead(this.db, table);
  }

  redrive(table: string, ids: string[] | undefined, nowMs: number, limit: number): Promise<RedriveResult> {
    return onTable(table, dead.redrive(this.db, table, ids, nowMs, limit));
  }

  deleteUnacked(table: string, ids: string[] | undefined, limit: number): Promise<number> {
    return onTable(table, messages.deleteUnacked(this.db, table, ids, limit));
  }
  purge(table: string, cutoffMs: number, limit: number): Promise<number> {
    return onTable(table, messages.purge(this.db, table, cutoffMs, limit));
  }

  oldestAck(table: string): Promise<number | undefined> {
    return onTable(table, messages.oldestAck(this.db, table));
  }

  dueTimes(table: string, afterMs: number, limit: number, ids?: string[]): Promise<number[]> {
    return onTable(table, messages.dueTimes(this.db, table, afterMs, limit, ids));
  }

  browse(table: string, query: BrowseQuery, nowMs: number): Promise<BrowsePage> {
    return onTable(table, browsing.browse(this.db, table, query, nowMs));
  }

  getMessage(table: string, id: string, nowMs: number): Promise<BrowsedMessage | undefined> {
    return onTable(table, browsing.getMessage(this.db, table, id, nowMs));
  }

  listWebhooks(): Promise<WebhookConfig[]> {
    return this.run(() => webhooks.listWebhooks(this.db));
  }

  putWebhook(config: WebhookConfig): Promise<boolean> {
    return this.run(() => webhooks.putWebhook(this.db, config));
  }

  deleteWebhook(table: string, name: string): Promise<boolean> {
    return this.run(() => webhooks.deleteWebhook(this.db, table, name));
  }

  deleteWebhooksOfMissingTables(table?: string): Promise<number> {
    return this.run(() => webhooks.deleteWebhooksOfMissingTables(this.db, table));
  }

  async ping(): Promise<boolean> {
    try {
      await sql`SELECT 1`.execute(this.db);
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    try {
      await this.db.destroy();
    } finally {
      this.unlock();
    }
  }
}

/** A statement on a table that is not there fails as TableNotFoundError, not a SQL error. */
async function onTable<T>(table: string, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (String((err as Error).message) === `no such table: ${table}`) throw new TableNotFoundError(table);
    throw err;
  }
}

/** onTable for a statement on several tables: the error names the missing one. */
async function onTables<T>(tables: readonly string[], work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    const missing = /^no such table: (\S+)$/.exec(String((err as Error).message))?.[1];
    if (missing !== undefined && tables.includes(missing)) throw new TableNotFoundError(missing);
    throw err;
  }
}

/** The embedded store on the file at `path` (created with its directory if missing), locked for this process. */
export function createSqliteStore(path: string): SqliteStore {
  const { db, path: file, unlock, times } = openSqlite(path);
  return new SqliteStore(db, file, unlock, times);
}
