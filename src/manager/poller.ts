import type { Mutex } from "async-mutex";
import type { Clock } from "../clock.js";
import type { Logger } from "../logger.js";
import type { MessageRow, MessageStore } from "../store/types.js";
import type { AddResult } from "./cache.js";
import { Ticker } from "./ticker.js";

export interface PollerDeps {
  clock: Clock;
  store: MessageStore;
  table: string;
  /** Vitess's cacheManagementMu: held for a whole poll (read and add) and by post-send discards. */
  mutex: Mutex;
  intervalMs: number;
  /** How many rows a poll may read: the cache capacity. */
  limit: () => number;
  hasReceivers: () => boolean;
  /** Adds one polled row to the cache. */
  add: (row: MessageRow) => AddResult;
  /** Called after a poll that added rows. */
  onAdded: () => void;
  onPolled: () => void;
  onFailed: (err: unknown) => void;
  log: Logger;
}

/**
 * Fills the cache from the table: every interval, and at once on `trigger()` (first subscriber, cache
 * drained while rows are pending, a delayed message falling due). Reads due rows in priority order, up to
 * the cache size; a full read (or a full cache) sets `pending`, so the send loop asks for another poll as
 * soon as it drains the cache.
 *
 * The poll holds the cache-management mutex across its read and its adds, so a post-send discard cannot
 * run between them (the poll could otherwise re-add a snapshot of a row that was just postponed). It holds
 * nothing else: the send loop keeps delivering what is cached while a slow read runs. Acks and reschedules
 * do not wait for the mutex (they must take effect at once); they record their ids with `forget`, and the
 * poll in progress skips those rows of its snapshot.
 */
export class Poller {
  /** Vitess starts in pending mode: the first poll must look. */
  pending = true;
  private forgotten: Set<string> | undefined;
  private readonly ticker: Ticker;

  constructor(private readonly deps: PollerDeps) {
    this.ticker = new Ticker(deps.clock, deps.intervalMs, () => this.pollOnce(), deps.onFailed);
  }

  get nextPollAt(): number {
    return this.ticker.nextAt;
  }

  start(): void {
    this.ticker.start();
  }

  stop(): Promise<void> {
    return this.ticker.stop();
  }

  trigger(): void {
    this.ticker.trigger();
  }

  /** Polls no later than `at` (epoch ms), e.g. when a rescheduled message falls due before the next poll. */
  runBy(at: number): void {
    this.ticker.runBy(at);
  }

  setInterval(ms: number): void {
    this.ticker.setInterval(ms);
  }

  /** Rows of these ids in the snapshot of a poll in progress are stale: skip them. */
  forget(ids: Iterable<string>): void {
    if (!this.forgotten) return;
    for (const id of ids) this.forgotten.add(id);
  }

  private async pollOnce(): Promise<void> {
    if (!this.deps.hasReceivers()) return;
    await this.deps.mutex.runExclusive(async () => {
      if (!this.deps.hasReceivers()) return;
      const forgotten = (this.forgotten = new Set());
      try {
        const limit = this.deps.limit();
        const rows = await this.deps.store.readDue(this.deps.table, this.deps.clock.now(), limit);
        this.deps.onPolled();
        this.pending = rows.length >= limit;
        let added = 0;
        for (const row of rows) {
          if (forgotten.has(row.id)) continue;
          const result = this.deps.add(row);
          if (result === "full") {
            this.pending = true;
            break;
          }
          // Rows already cached (in flight, not yet postponed) are no news: only real additions wake the
          // send loop, or a read full of in-flight rows would trigger poll after poll.
          if (result === "added") added++;
        }
        if (added > 0) this.deps.onAdded();
      } catch (err) {
        this.deps.onFailed(err);
        this.deps.log.warn({ err, table: this.deps.table }, "poll failed");
      } finally {
        this.forgotten = undefined;
      }
    });
  }
}
