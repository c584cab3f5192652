import type { WakeNote } from "../model/wake.js";
import { Semaphore } from "async-mutex";
import { type Clock, systemClock } from "../clock.js";
import { ClosedError, ConflictError, TableNotFoundError } from "../errors.js";
import { IdGenerator } from "../ids.js";
import { type Logger, silentLogger } from "../logger.js";
import { ByteBudget } from "../manager/byte-budget.js";
import { type ManagerSnapshot, MessageManager } from "../manager/manager.js";
import type { ManagerStats } from "../manager/stats.js";
import { Ticker } from "../manager/ticker.js";
import type { Random } from "../model/backoff.js";
import { deadLetterBaseOf, deadLetterTableOf, MAX_DEAD_LETTER_BASE } from "../model/limits.js";
import { resolveOptions, type TableOptions } from "../options.js";
import type { MessageStore } from "../store/types.js";
import type { BusEvent } from "../cluster/bus-events.js";
import { descriptionOf, type TableDescription, TableHandle, type TableServices } from "./table-handle.js";
import { Sweeper } from "./sweeper.js";
import { TableEntry } from "./table-entry.js";
import { checkDeadLetterName, checkTableName } from "../model/validate.js";

export interface EngineConfig {
  store: MessageStore;
  clock?: Clock;
  random?: Random;
  log?: Logger;
  /** Post-send postpones running at once across all tables (Vitess: the postpone semaphore). */
  postponeConcurrency?: number;
  /** Bytes of payload all tables' caches may hold at once (default: no bound). */
  cacheMaxBytes?: number;
  /** Bytes of payload all enqueues may hold until their commit before more are refused (default: no bound). */
  enqueueMaxBytes?: number;
  /** How often to look for tables created, altered or dropped outside this server. */
  schemaRefreshMs?: number;
  /** Defaults for options a create request leaves out. */
  defaultOptions?: Partial<TableOptions>;
  /** Rows per table waiting for an INSERT before enqueues are refused as overloaded (default 50,000). */
  maxQueuedInserts?: number;
  /**
   * How long an enqueue may wait for its turn to write before it is refused as unavailable (nothing
   * written), and how long an enqueue, ack or postpone whose outcome is unknown is sent again (retry.ts).
   * Default 10 s; the server passes its statement timeout.
   */
  writeTimeoutMs?: number;
  /** Node bits of the message ids (0..1023): this node's slot among the live nodes (cluster membership). */
  idNode?: number;
  /**
   * Told of what other nodes on the database should know at once (issue 25): rows due, tables changed. Each
   * event is a hint (a node that misses one finds the same by polling). Absent on a single node.
   */
  signal?: (event: BusEvent) => void;
  /** How long a table's manager may sit idle before it is released (default 60 s; table-entry.ts). */
  releaseIdleAfterMs?: number;
}

/** How often the engine looks for idle managers to release. */
const RELEASE_CHECK_MS = 5_000;

/**
 * Told when the engine starts serving a table (created here, or discovered) and when it stops (`dropped`:
 * the table is gone, by a request here or found missing at a refresh; otherwise the engine is closing).
 * Webhook subscribers follow tables this way.
 */
export interface TableListener {
  opened(table: string): void;
  closed(table: string, dropped: boolean): void;
}

export { type EnqueueMessage, type EnqueueResult } from "../manager/inserter.js";

export { type ReceiptResult, type TableDescription, TableHandle } from "./table-handle.js";

/**
 * The Engine serves the message tables (Vitess's messager engine). It discovers tables by their COMMENT,
 * follows creates, option changes and drops (its own at once, others' at the next schema refresh), and hands
 * out each table's TableHandle (table-handle.ts): the only way the server's routes, its subscribers and the
 * webhooks reach a table. Each table has a TableEntry (table-entry.ts), which runs a MessageManager only
 * while the table is in use and releases it when idle; the Sweeper (sweeper.ts) looks at every table's due
 * rows and acks a hundred tables a statement, in place of a poll and purge timer per table. Managers never
 * leave the engine.
 */
export class Engine {
  private readonly store: MessageStore;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly log: Logger;
  private readonly semaphore: Semaphore;
  /** Shared by every table's cache. */
  readonly cacheBudget: ByteBudget;
  private readonly enqueueBudget: ByteBudget;
  private readonly tables = new Map<string, TableEntry>();
  /** Each served table's counters (its entry's), kept beside `tables`. */
  private readonly statsByTable = new Map<string, ManagerStats>();
  private readonly sweeper: Sweeper;
  private readonly releaser: Ticker;
  private readonly releaseIdleAfterMs: number | undefined;
  /** One id generator for all tables: its node bits are this process's. */
  private readonly ids: IdGenerator;
  private readonly maxQueuedInserts: number;
  /** What the table handles get of the engine. */
  private readonly services: TableServices;
  private readonly writeTimeoutMs: number;
  private readonly refresher: Ticker;
  private readonly defaults: Partial<TableOptions>;
  private readonly listeners = new Set<TableListener>();
  private state: "new" | "open" | "closed" = "new";
  private readonly signal: ((event: BusEvent) => void) | undefined;
  /** Applied to every table's poller (setPollCap). */
  private pollCapMs: number | undefined;
  /** Applied to every table (setShared). */
  private shared = false;
  private refreshing: Promise<void> | undefined;
  private nextRefresh: Promise<void> | undefined;
  /** Counts this engine's own table changes (create, alter, drop), in order. */
  private changes = 0;
  /**
   * Tables this engine changed, with the number of the last change, kept while a refresh that read the
   * schema before that change may still come back: what it found for them is older than what we know.
   */
  private readonly changedAt = new Map<string, number>();

  constructor(config: EngineConfig) {
    this.store = config.store;
    this.clock = config.clock ?? systemClock;
    this.random = config.random ?? Math.random;
    this.log = config.log ?? silentLogger;
    this.semaphore = new Semaphore(config.postponeConcurrency ?? 4);
    this.cacheBudget = new ByteBudget(config.cacheMaxBytes ?? Infinity);
    this.enqueueBudget = new ByteBudget(config.enqueueMaxBytes ?? Infinity);
    this.defaults = config.defaultOptions ?? {};
    this.writeTimeoutMs = config.writeTimeoutMs ?? 10_000;
    this.ids = new IdGenerator(this.clock, this.random, config.idNode);
    this.signal = config.signal;
    this.maxQueuedInserts = config.maxQueuedInserts ?? 50_000;
    this.services = {
      store: this.store,
      clock: this.clock,
      onTable: (work) => this.onTable(work),
      countDead: (table) => this.countDead(table),
      mustHaveDeadLetterName: (table) => this.mustHaveDeadLetterName(table),
      wake: (table, note) => this.wake(table, note),
    };
    this.releaseIdleAfterMs = config.releaseIdleAfterMs;
    this.sweeper = new Sweeper({
      store: this.store,
      clock: this.clock,
      log: this.log,
      missing: () => void this.refresh().catch(() => {}),
    });
    this.releaser = new Ticker(this.clock, RELEASE_CHECK_MS, () => this.releaseIdle());
    this.refresher = new Ticker(
      this.clock,
      config.schemaRefreshMs ?? 10_000,
      () => this.refresh(),
      (err) => this.log.warn({ err }, "schema refresh failed"),
    );
  }

  get isOpen(): boolean {
    return this.state === "open";
  }

  /**
   * Discovers the message tables and starts serving them. Idempotent. If the database cannot be read
   * now, the engine opens anyway (logging the error) and the periodic refresh keeps trying.
   */
  async open(): Promise<void> {
    if (this.state === "open") return;
    this.state = "open";
    this.refresher.start();
    this.sweeper.start();
    this.releaser.start();
    try {
      await this.refresh();
    } catch (err) {
      this.log.warn({ err }, "initial table discovery failed; retrying every schemaRefreshMs");
    }
  }

  /** Stops every manager; idempotent. The store stays open: its owner closes it. */
  async close(): Promise<void> {
    if (this.state !== "open") {
      this.state = "closed";
      return;
    }
    this.state = "closed";
    await Promise.all([this.refresher.stop(), this.sweeper.stop(), this.releaser.stop()]);
    const entries = [...this.tables.values()];
    this.tables.clear();
    this.statsByTable.clear();
    await Promise.all(entries.map((e) => e.close("server shutting down")));
    for (const e of entries) this.tell((l) => l.closed(e.name, false));
  }

  /** Releases the managers that have been idle long enough (TableEntry.releaseIfIdle). */
  private async releaseIdle(): Promise<void> {
    const now = this.clock.now();
    const closing: Array<Promise<void>> = [];
    for (const e of this.tables.values()) {
      const released = e.releaseIfIdle(now);
      if (released) closing.push(released);
    }
    await Promise.all(closing);
  }

  /** Looks now at the tables the sweep would look at on its next tick (tests). */
  sweepNow(): Promise<void> {
    return this.sweeper.sweepNow();
  }

  /** How many tables run a manager now (the others are idle: lazy managers). */
  get activeManagers(): number {
    let n = 0;
    for (const e of this.tables.values()) if (e.manager) n++;
    return n;
  }

  /** Brings the served tables in line with the database. Concurrent calls share one read. */
  refresh(): Promise<void> {
    if (!this.refreshing) {
      this.refreshing = this.refreshOnce().finally(() => (this.refreshing = undefined));
      return this.refreshing;
    }
    // One is running, but it may have read the schema before the caller's change: queue one more.
    this.nextRefresh ??= this.refreshing
      .catch(() => {})
      .then(() => {
        this.nextRefresh = undefined;
        return this.refresh();
      });
    return this.nextRefresh;
  }

  private async refreshOnce(): Promise<void> {
    const readAfter = this.changes;
    const found = await this.store.discoverTables();
    if (this.state !== "open") return;
    // A table we created, altered or dropped while the read ran is left as we have it (the read may predate
    // the change): otherwise a table created here a moment ago would be closed as dropped.
    const newer = (name: string) => (this.changedAt.get(name) ?? 0) > readAfter;
    const names = new Set<string>();
    for (const { name, options } of found) {
      names.add(name);
      if (!newer(name)) this.follow(name, options);
    }
    for (const name of [...this.tables.keys()]) if (!names.has(name) && !newer(name)) await this.stopServing(name, "table dropped");
    for (const [name, at] of this.changedAt) if (at <= readAfter) this.changedAt.delete(name); // refreshes run one at a time
  }

  /** Notes a change of ours to a table, once it is written (see changedAt). */
  private changed(table: string): void {
    this.changedAt.set(table, ++this.changes);
  }

  /** Follows tables opened and closed from now on; returns the function that stops it. */
  watchTables(listener: TableListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  tableNames(): string[] {
    return [...this.tables.keys()].sort();
  }

  /**
   * Tables described as TableHandle.describe does, in one statement for all of them (a page of a listing),
   * in the order given; a name this engine does not serve is left out. TableNotFoundError when one of them
   * was dropped behind the engine's back (a refresh follows, as for any table found missing).
   */
  async describeTables(names: readonly string[]): Promise<TableDescription[]> {
    this.mustBeOpen();
    const served = names.filter((n) => this.tables.has(n));
    let stats;
    try {
      stats = await this.store.describeTables(served, this.clock.now());
    } catch (err) {
      if (err instanceof TableNotFoundError) void this.refresh().catch(() => {});
      throw err;
    }
    return served.flatMap((name) => {
      const entry = this.tables.get(name);
      const s = stats.get(name);
      if (!entry || !s) return [];
      return [descriptionOf(name, entry, { ...s, dead: this.hasOwnDeadLetters(name) ? s.dead : 0 })];
    });
  }

  /** A served table's options, or undefined (no statement: the listing's `stats=false`). */
  optionsOf(table: string): TableOptions | undefined {
    return this.tables.get(table)?.options;
  }

  has(table: string): boolean {
    return this.tables.has(table);
  }

  /** Creates the table, or changes its options when it exists. */
  async ensureTable(table: string, partial: Partial<TableOptions> = {}): Promise<{ created: boolean; options: TableOptions }> {
    this.mustBeOpen();
    checkTableName(table);
    checkDeadLetterName(table, partial.maxAttempts ?? (this.tables.has(table) ? undefined : this.defaults.maxAttempts));
    // <name>_dlq is <name>'s dead-letter table: the two names never both belong to message tables.
    const base = deadLetterBaseOf(table);
    if (!this.tables.has(table) && base !== undefined && this.tables.has(base)) {
      throw new ConflictError(`${table} is the name of ${base}'s dead-letter table: it cannot be a message table while ${base} is one`);
    }
    const dlq = deadLetterTableOf(table);
    if ((!this.tables.has(table) || (partial.maxAttempts ?? 0) > 0) && this.tables.has(dlq)) {
      throw new ConflictError(`${dlq} is a message table: ${table} cannot be a message table with it as its dead-letter table`);
    }
    if (!this.tables.has(table)) {
      const options = resolveOptions({ ...this.defaults, ...partial });
      if (await this.store.createTable(table, options)) {
        this.changed(table);
        this.follow(table, options);
        this.signal?.({ kind: "table", table, change: "created" });
        return { created: true, options };
      }
      await this.refresh(); // it was there (made elsewhere): pick it up and alter it below
      if (!this.tables.has(table)) throw new ConflictError(`table ${table} exists and is not a message table`);
    }
    return { created: false, options: await this.alter(table, partial) };
  }

  /**
   * Stops (or starts again) delivery from a table: kept in the table's options, so it holds across restarts
   * and on every node (the others hear it as any option change: at once over the bus, else at their next
   * schema refresh). Enqueues go on. TableNotFoundError for a table that is not a message table.
   */
  async setPaused(table: string, paused: boolean): Promise<TableOptions> {
    await this.entry(table);
    return this.alter(table, { paused });
  }

  async dropTable(table: string): Promise<boolean> {
    this.mustBeOpen();
    checkTableName(table);
    if (!this.tables.has(table)) await this.refresh();
    if (!this.tables.has(table)) return false;
    // Drop first, then forget: forgetting first would let a request in between bring the manager back.
    const dropped = await this.store.dropTable(table);
    this.changed(table);
    this.signal?.({ kind: "table", table, change: "dropped" });
    await this.stopServing(table, "table dropped");
    return dropped;
  }

  /**
   * The one way into a table: its handle (table-handle.ts). A table made elsewhere since the last refresh is
   * picked up first; an unknown one is TableNotFoundError (404).
   */
  async table(table: string): Promise<TableHandle> {
    return new TableHandle(await this.entry(table), this.services);
  }

  /** Dead letters in the table's dead-letter table (0 when it has none). */
  countDead(table: string): Promise<number> {
    return this.hasOwnDeadLetters(table) ? this.store.countDead(table) : Promise.resolve(0);
  }

  /** False when <table>_dlq is a message table of its own (made outside tablemq): it holds no dead letters of <table>. */
  private hasOwnDeadLetters(table: string): boolean {
    return !this.tables.has(deadLetterTableOf(table));
  }

  /** A message table named <table>_dlq (made outside tablemq) is not <table>'s dead-letter table. */
  private mustHaveDeadLetterName(table: string): void {
    if (table.length > MAX_DEAD_LETTER_BASE) {
      throw new ConflictError(`${table}: a name longer than ${MAX_DEAD_LETTER_BASE} characters leaves no room for a dead-letter table`);
    }
    if (!this.hasOwnDeadLetters(table)) {
      const dlq = deadLetterTableOf(table);
      throw new ConflictError(`${dlq} is a message table, not ${table}'s dead-letter table: ${table} has no dead letters to show`);
    }
  }

  /*
   * Other nodes (issue 25; src/cluster/): what their events and their comings and goings mean here.
   */

  /** Events from other nodes: rows due (look now, or then), tables changed (read the schema again). */
  applyPeerEvents(events: readonly BusEvent[]): void {
    if (this.state !== "open") return;
    let refresh = false;
    for (const event of events) {
      // A table with no manager here has nobody subscribed here: nothing to look for (its first subscriber's poll will).
      if (event.kind === "due") this.tables.get(event.table)?.manager?.peerDue(event.at);
      else if (event.kind === "wake") this.tables.get(event.table)?.manager?.wake(event);
      else if (event.kind === "table") refresh = true;
    }
    if (refresh) void this.refresh().catch((err: unknown) => this.log.warn({ err }, "schema refresh after a peer's table change failed"));
  }

  /**
   * Rows of `table` were written or changed outside the server (TableHandle.wake): its manager here looks,
   * and so do the other nodes (a bus event; they apply it as applyPeerEvents does, without passing it on).
   */
  private wake(table: string, note: WakeNote): void {
    this.tables.get(table)?.manager?.wake(note);
    this.signal?.({ kind: "wake", table, ...note });
  }

  /** Looks for due rows in every table, and reads the schema again: bus events may have been missed. */
  resync(): void {
    if (this.state !== "open") return;
    for (const m of this.managers()) m.peerDue();
    void this.refresh().catch((err: unknown) => this.log.warn({ err }, "schema refresh failed"));
  }

  /** Other nodes serve this database too (or no longer): see MessageManager.setShared. */
  setShared(shared: boolean): void {
    if (shared === this.shared) return;
    this.shared = shared;
    for (const m of this.managers()) m.setShared(shared);
  }

  /** Every table polls at least every `ms` (undefined: at its own interval again). See MessageManager.setPollCap. */
  setPollCap(ms: number | undefined): void {
    if (ms === this.pollCapMs) return;
    this.pollCapMs = ms;
    for (const m of this.managers()) m.setPollCap(ms);
  }

  /** This node's slot among the nodes changed (it joined again): the node bits of the ids it makes from now on. */
  setIdNode(node: number): void {
    this.ids.setNode(node);
  }

  /** A node stopped heartbeating: every table looks for its deliveries when they fall due. */
  peerLost(): void {
    for (const m of this.managers()) m.expectPeerRedeliveries();
  }

  /** Every served table's counters, live (not copies), in no order: the dashboard's history reads them each second. */
  counters(): ReadonlyMap<string, ManagerStats> {
    return this.statsByTable;
  }

  /** A table's counters and sizes, read without waiting (metrics); undefined for a table not served. */
  snapshot(table: string): ManagerSnapshot | undefined {
    return this.tables.get(table)?.snapshot();
  }

  /** Runs a store operation on a table; if the table vanished behind our back, forget it at once. */
  private async onTable<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (err) {
      if (err instanceof TableNotFoundError) void this.refresh().catch(() => {});
      throw err;
    }
  }

  /** The managers running now (tables in use). */
  private *managers(): Iterable<MessageManager> {
    for (const e of this.tables.values()) if (e.manager) yield e.manager;
  }

  /** The entry of a table; a table made elsewhere since the last refresh is picked up first. */
  private async entry(table: string): Promise<TableEntry> {
    this.mustBeOpen();
    checkTableName(table);
    let entry = this.tables.get(table);
    if (!entry) {
      await this.refresh();
      entry = this.tables.get(table);
    }
    if (!entry) throw new TableNotFoundError(table);
    return entry;
  }

  private async alter(table: string, partial: Partial<TableOptions>): Promise<TableOptions> {
    const entry = this.tables.get(table)!;
    const options = resolveOptions({ ...entry.options, ...partial });
    if (!sameOptions(options, entry.options)) {
      await this.store.alterTableOptions(table, options);
      this.changed(table);
      entry.configure(options);
      this.signal?.({ kind: "table", table, change: "altered" });
    }
    return options;
  }

  private follow(table: string, options: TableOptions): void {
    const known = this.tables.get(table);
    if (known) {
      if (!sameOptions(known.options, options)) known.configure(options);
      return;
    }
    const entry = new TableEntry(table, options, {
      store: this.store,
      log: this.log,
      makeManager: (e) => this.makeManager(e),
      replan: () => this.sweeper.replan(table),
      ...(this.releaseIdleAfterMs === undefined ? {} : { releaseAfterMs: this.releaseIdleAfterMs }),
    });
    this.tables.set(table, entry);
    this.statsByTable.set(table, entry.stats);
    this.sweeper.add(table, entry);
    this.tell((l) => l.opened(table));
  }

  /** A table's manager, opened: made by its entry when the table is first used (and again after a release). */
  private makeManager(entry: TableEntry): MessageManager {
    const table = entry.name;
    const created = new MessageManager(table, entry.options, {
      stats: entry.stats,
      replanSweep: () => this.sweeper.replan(table),
      store: this.store,
      clock: this.clock,
      random: this.random,
      semaphore: this.semaphore,
      budget: this.cacheBudget,
      enqueueBudget: this.enqueueBudget,
      log: this.log,
      writeTimeoutMs: this.writeTimeoutMs,
      ids: this.ids,
      maxQueuedInserts: this.maxQueuedInserts,
      ...(this.signal
        ? { signalDue: (at?: number) => this.signal!(at === undefined ? { kind: "due", table } : { kind: "due", table, at }) }
        : {}),
    });
    if (this.pollCapMs !== undefined) created.setPollCap(this.pollCapMs);
    if (this.shared) created.setShared(true);
    created.open();
    return created;
  }

  /** Stops serving a table that is gone. */
  private async stopServing(table: string, reason: string): Promise<void> {
    const entry = this.tables.get(table);
    this.tables.delete(table);
    this.statsByTable.delete(table);
    this.sweeper.remove(table);
    await entry?.close(reason);
    if (entry) this.tell((l) => l.closed(table, true));
  }

  private tell(event: (listener: TableListener) => void): void {
    for (const listener of this.listeners) {
      try {
        event(listener);
      } catch (err) {
        this.log.warn({ err }, "table listener threw");
      }
    }
  }

  private mustBeOpen(): void {
    if (this.state !== "open") throw new ClosedError("engine");
  }
}

function sameOptions(a: TableOptions, b: TableOptions): boolean {
  return a === b || (Object.keys(a) as Array<keyof TableOptions>).every((k) => a[k] === b[k]);
}
