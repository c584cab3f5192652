/**
 * MessageStore on MySQL 8.0+ / MariaDB 10.6+. Times cross the interface as epoch milliseconds and are
 * stored as Vitess's nanoseconds; ids are decimal strings (BIGINT UNSIGNED).
 */
import { OutcomeUnknownError, UnavailableError } from "../../errors.js";
import { sql, type Kysely } from "kysely";
import type { TableOptions } from "../../options.js";
import type {
  BackoffSpec,
  BrowsedMessage,
  BrowsePage,
  BrowseQuery,
  DeliveryChange,
  DeadLetterPage,
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
import type { ClaimRow, Delivery, NewMessage } from "../../model/messages.js";
import { createBatchDatabase, createMysqlDatabase, type MysqlConnectOptions } from "./connect.js";
import * as browsing from "./browse.js";
import { claim } from "./claims.js";
import * as ddl from "./ddl.js";
import { onTable } from "./ddl.js";
import * as dead from "./dead-letters.js";
import { updateDeliveries } from "./deliveries.js";
import * as messages from "./messages.js";
import { PLAIN_FORM, readTableForms, type TableForm } from "./table-form.js";
import * as webhooks from "./webhooks.js";

export interface MysqlStoreOptions extends MysqlConnectOptions {
  /**
   * Called for each table whose comment marks it as a message table but which cannot be served
   * (malformed option, unsupported name). Discovery skips such tables instead of failing.
   */
  onSkippedTable?: (table: ddl.SkippedTable) => void;
}

/** Forms of known tables read again at each discovery, in turn (discoverTables). */
export const FORMS_RECHECKED = 100;

export class MysqlStore implements MessageStore, WebhookStore {
  /** The webhooks table, made once on first use (and again should it vanish). */
  private webhooksTable: Promise<void> | undefined;
  /**
   * Each message table's form (table-form.ts), as the last discovery, or this store's create, read it. A
   * table missing here gets PLAIN_FORM, which is right for any table.
   */
  private readonly forms = new Map<string, TableForm>();
  private creates = 0;
  /** The last table whose form a refresh read again (inTurn). */
  private formsCursor = "";

  constructor(
    /** The Kysely instance the store owns; close() destroys it. */
    readonly db: Kysely<any>,
    /** Its multi-statement pool for batches of acks and postpones (connect.ts `createBatchDatabase`); close()
     * destroys it too. */
    private readonly batch: Kysely<any>,
    private readonly options: Pick<MysqlStoreOptions, "onSkippedTable"> = {},
  ) {}

  /**
   * The message tables, and the forms of those new since the last call plus FORMS_RECHECKED of the others in
   * turn (a change made to a table's columns, CHECKs or triggers outside tablemq is seen within a few
   * refreshes: reading the forms of 10,000 tables at every refresh was ~60,000 rows of information_schema).
   */
  async discoverTables(): Promise<DiscoveredTable[]> {
    const creates = this.creates;
    const { tables, skipped } = await read(ddl.discoverMessageTables(this.db));
    for (const table of skipped) this.options.onSkippedTable?.(table);
    const names = tables.map((t) => t.name);
    const known = names.filter((n) => this.forms.has(n));
    const fresh = names.filter((n) => !this.forms.has(n));
    const again = known.length <= FORMS_RECHECKED ? known : this.inTurn(known);
    const forms = await this.readForms([...fresh, ...again]);
    for (const [name, form] of forms) this.forms.set(name, form);
    // Forget tables gone since, unless this store made one meanwhile: this read may predate it.
    const found = new Set(names);
    if (this.creates === creates) for (const name of this.forms.keys()) if (!found.has(name)) this.forms.delete(name);
    return tables;
  }

  /** The next FORMS_RECHECKED of `names` (sorted), after those taken last time, wrapping around. */
  private inTurn(names: string[]): string[] {
    const start = names.findIndex((n) => n > this.formsCursor);
    const from = start < 0 ? 0 : start;
    const picked = [...names.slice(from, from + FORMS_RECHECKED)];
    if (picked.length < FORMS_RECHECKED) picked.push(...names.slice(0, FORMS_RECHECKED - picked.length));
    this.formsCursor = picked.at(-1) ?? "";
    return picked;
  }

  /**
   * The tables' forms; none if they cannot be read: the tables are served, in PLAIN_FORM (a form is a
   * saving, never needed), until a later read succeeds.
   */
  private async readForms(tables: string[]): Promise<Map<string, TableForm>> {
    try {
      return await readTableForms(this.db, tables);
    } catch {
      for (const name of tables) this.forms.delete(name);
      return new Map();
    }
  }

  /** The form the statements on `table` are written for. */
  formOf(table: string): TableForm {
    return this.forms.get(table) ?? PLAIN_FORM;
  }

  /** Discovery including the skipped tables, for diagnostics (e.g. `tablemq table list`). */
  discoverTablesDetailed(): Promise<ddl.Discovery> {
    return read(ddl.discoverMessageTables(this.db));
  }

  async createTable(table: string, options: TableOptions): Promise<boolean> {
    this.creates++;
    const created = await ddl.createTable(this.db, table, options);
    const form = (await this.readForms([table])).get(table);
    if (form) this.forms.set(table, form);
    return created;
  }

  alterTableOptions(table: string, options: TableOptions): Promise<void> {
    return onTable(table, ddl.alterTableOptions(this.db, table, options));
  }

  async dropTable(table: string): Promise<boolean> {
    this.forms.delete(table);
    const dropped = await ddl.dropTable(this.db, table);
    if (dropped) await dead.dropDeadLetterTable(this.db, table);
    return dropped;
  }

  describeTable(table: string, nowMs: number): Promise<TableStats> {
    return onTable(table, read(ddl.describeTable(this.db, table, nowMs)));
  }

  describeTables(tables: readonly string[], nowMs: number): Promise<Map<string, TableStats & { dead: number }>> {
    return ddl.onTables(tables, read(ddl.describeTables(this.db, tables, nowMs)));
  }

  sweep(queries: readonly SweepQuery[], nowMs: number): Promise<Map<string, SweepResult>> {
    return ddl.onTables(
      queries.map((q) => q.table),
      read(ddl.sweep(this.db, queries, nowMs)),
    );
  }

  maxMessageId(table: string): bigint {
    return this.formOf(table).maxId;
  }

  insertMessages(table: string, rows: NewMessage[]): Promise<InsertResult> {
    return onTable(table, messages.insertMessages(this.db, table, rows, this.formOf(table)));
  }

  readDue(table: string, nowMs: number, limit: number, maxBytes?: number): Promise<DueRows> {
    return onTable(table, read(messages.readDue(this.db, table, nowMs, limit, maxBytes)));
  }

  claim(table: string, rows: ClaimRow[], nowMs: number, spec: BackoffSpec, nonceNs: number): Promise<string[]> {
    return onTable(table, claim(this.db, table, rows, nowMs, spec, nonceNs, this.formOf(table)));
  }

  reschedule(table: string, ids: string[], nowMs: number, delayMs: number): Promise<number> {
    return onTable(table, messages.reschedule(this.db, table, ids, nowMs, delayMs, this.formOf(table)));
  }

  ack(table: string, ids: string[], nowMs: number): Promise<number> {
    return onTable(table, messages.ack(this.db, table, ids, nowMs, this.formOf(table)));
  }

  settleGroups(table: string, groups: SettleGroup[]): Promise<number[]> {
    return onTable(table, messages.settleGroups(this.batch, table, groups, this.formOf(table)));
  }

  updateDeliveries(table: string, deliveries: Delivery[], nowMs: number, change: DeliveryChange): Promise<FencedResult> {
    return onTable(table, updateDeliveries(this.db, table, deliveries, nowMs, change, this.formOf(table)));
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
    return onTable(table, read(browsing.browse(this.db, table, query, nowMs)));
  }

  getMessage(table: string, id: string, nowMs: number): Promise<BrowsedMessage | undefined> {
    return onTable(table, read(browsing.getMessage(this.db, table, id, nowMs)));
  }

  listWebhooks(): Promise<WebhookConfig[]> {
    return this.onWebhooks(() => webhooks.listWebhooks(this.db));
  }

  putWebhook(config: WebhookConfig): Promise<boolean> {
    return this.onWebhooks(() => webhooks.putWebhook(this.db, config));
  }

  deleteWebhook(table: string, name: string): Promise<boolean> {
    return this.onWebhooks(() => webhooks.deleteWebhook(this.db, table, name));
  }

  deleteWebhooksOfMissingTables(table?: string): Promise<number> {
    return this.onWebhooks(() => webhooks.deleteWebhooksOfMissingTables(this.db, table));
  }

  /** Runs a webhook statement once the table exists; made again (once) if it was dropped meanwhile. */
  private async onWebhooks<T>(work: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      this.webhooksTable ??= webhooks
        .createWebhooksTableStatement()
        .execute(this.db)
        .then(
          () => undefined,
          (err: unknown) => {
            this.webhooksTable = undefined; // not made: the next call tries again
            throw err;
          },
        );
      await this.webhooksTable;
      try {
        return await work();
      } catch (err) {
        if (attempt > 0 || ddl.errno(err) !== ddl.ER_NO_SUCH_TABLE) throw err;
        this.webhooksTable = undefined;
      }
    }
  }

  /** False when the database errors or does not answer within `timeoutMs` (a hung server). */
  async ping(timeoutMs = 2_000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    try {
      return await Promise.race([sql`SELECT 1`.execute(this.db).then(() => true), timedOut]);
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.db.destroy(), this.batch.destroy()]);
  }
}

/** A read writes nothing: when its connection is lost or it times out, it simply failed (unavailable). */
async function read<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (err instanceof OutcomeUnknownError) throw new UnavailableError(err.message, { cause: err });
    throw err;
  }
}

/** A store over a new pool for `mysql://user:pass@host:port/db`. */
export function createMysqlStore(url: string, opts: MysqlStoreOptions = {}): MysqlStore {
  const { onSkippedTable, ...connect } = opts;
  return new MysqlStore(createMysqlDatabase(url, connect), createBatchDatabase(url, connect), onSkippedTable ? { onSkippedTable } : {});
}
