/**
 * The live feed behind GET /v1/events (server-sent events) and the dashboard: each second a `rates` event
 * (every visible table's messages per second on this node, history.ts), and while anyone listens, every
 * FEED_TABLES_MS (longer when describing takes long: FEED_DESCRIBE_SPACING) a `tables` event (the tables as GET /v1/tables describes them), which also records each
 * table's depth in the history. With nobody listening the tables are not described: describing counts a
 * table's rows.
 */
import type { Logger } from "../../logger.js";
import type { TableAnswer } from "../../wire.js";
import type { RateHistory, RatePoint } from "./history.js";

/** How often listeners get the tables' descriptions, at most. */
export const FEED_TABLES_MS = 2_000;
/**
 * Describing the tables waits this many times as long as the last describing took: with 10,000 tables
 * (100 statements counting every table's rows, ~5 s here) the feed describes them every ~50 s, not every 2 s.
 */
export const FEED_DESCRIBE_SPACING = 10;
/** A listener whose unsent events pass this is too slow to follow: it is cut off (it may reconnect). */
const MAX_BACKLOG_BYTES = 1024 * 1024;

export interface FeedListener {
  /** Whether this listener may see the table (its token's scopes). */
  canSee(table: string): boolean;
  /** Sends one event; returns the bytes the listener has not taken yet. */
  send(event: string, data: string): number;
  /** Ends the listener's stream. */
  end(): void;
}

export interface FeedDeps {
  history: RateHistory;
  /** Every table this node serves, described. */
  describeAll(): Promise<TableAnswer[]>;
  now(): number;
  log: Logger;
}

export class LiveFeed {
  private readonly listeners = new Set<FeedListener>();
  private describing: Promise<void> | undefined;
  /** When the tables may be described next (FEED_TABLES_MS, or FEED_DESCRIBE_SPACING × the last describing). */
  private nextTablesAt: number = -Infinity;

  constructor(private readonly deps: FeedDeps) {}

  get size(): number {
    return this.listeners.size;
  }

  /** Adds a listener, which gets the tables at once; returns its removal. */
  add(listener: FeedListener): () => void {
    this.listeners.add(listener);
    void this.refreshTables([listener]);
    return () => this.listeners.delete(listener);
  }

  /** Each history step: the latest rates to every listener, and the tables when they are due. */
  tick(): void {
    if (this.listeners.size === 0) return;
    const latest = this.deps.history.latest();
    for (const listener of this.listeners) {
      const tables: Record<string, Omit<RatePoint, "t">> = {};
      let t = 0;
      for (const [name, { t: at, ...rates }] of latest) {
        if (!listener.canSee(name)) continue;
        tables[name] = rates;
        t = Math.max(t, at);
      }
      this.deliver(listener, "rates", JSON.stringify({ t: t || this.deps.now(), tables }));
    }
    // Not while the last describing runs (a slow database): the next tick after it asks again.
    if (!this.describing && this.deps.now() >= this.nextTablesAt) void this.refreshTables([...this.listeners]);
  }

  /** Ends every listener's stream (the server is closing). */
  close(): void {
    for (const listener of this.listeners) listener.end();
    this.listeners.clear();
  }

  /** Describes the tables (one describing at a time), records their depth, sends each listener its visible ones. */
  private refreshTables(to: FeedListener[]): Promise<void> {
    if (this.describing) return this.describing.then(() => this.refreshTables(to.filter((l) => this.listeners.has(l))));
    const began = this.deps.now();
    this.nextTablesAt = began + FEED_TABLES_MS;
    this.describing = (async () => {
      try {
        const tables = await this.deps.describeAll();
        this.nextTablesAt = Math.max(this.nextTablesAt, began + FEED_DESCRIBE_SPACING * (this.deps.now() - began));
        this.deps.history.recordDepth(this.deps.now(), tables);
        for (const listener of to) {
          if (!this.listeners.has(listener)) continue;
          this.deliver(listener, "tables", JSON.stringify({ tables: tables.filter((t) => listener.canSee(t.name)) }));
        }
      } catch (err) {
        this.deps.log.warn({ err }, "live feed: describing the tables failed; trying again at the next step");
      } finally {
        this.describing = undefined;
      }
    })();
    return this.describing;
  }

  private deliver(listener: FeedListener, event: string, data: string): void {
    if (listener.send(event, data) > MAX_BACKLOG_BYTES) {
      this.listeners.delete(listener);
      listener.end();
    }
  }
}
