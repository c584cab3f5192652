import type { Mutex } from "async-mutex";
import type { MessageRow } from "../model/messages.js";
import type { AddResult } from "./cache.js";
import { payloadBytes } from "../payload.js";
import { DueTimes } from "./due-times.js";
import type { TableEnv, TableState } from "./table-state.js";
import { Ticker } from "./ticker.js";

/** The fewest rows a bounded poll asks for, however large the payloads it read last. */
const MIN_POLL_ROWS = 10;
/** Rows the first poll of a table asks for while its payloads' size is unknown. */
const FIRST_POLL_ROWS = 100;
/**
 * A table whose last read had a payload this large a share of the poll's byte bound (1/100) is read without
 * measuring every row first (see readSize).
 */
const LARGE_ROW_SHARE = 100;

/**
 * Due times kept per table (DueTimes, in 10 ms slots: 100 s of them at every slot). Past that, the times
 * not kept are read back from the table (rereadDueTimes) once the kept ones have passed.
 */
export const DUE_TIMES_KEPT = 10_000;
/** Least time between two reads of a table's due times (each scans its unacked rows). */
const REREAD_SPACING_MS = 1_000;
/**
 * After a failed poll the next one comes this soon, doubling with each failure up to the poll interval: the
 * failed poll may have been the one a row's due time asked for, and its wake-up is spent.
 */
const FIRST_RETRY_MS = 250;

export interface PollerDeps {
  env: TableEnv;
  /** Its pending flag, receivers (nobody subscribed: no poll), options (cacheSize: rows a poll may read) and counters. */
  state: TableState;
  /** Vitess's cacheManagementMu: held for a whole poll (read and add) and by post-send discards. */
  mutex: Mutex;
  /** How many payload bytes a poll may read: what the cache budget has free. */
  maxBytes: () => number;
  /** How many rows a poll may read: the cache size, or less (the manager's `pollRows`). */
  maxRows: () => number;
  /** Adds one polled row to the cache. */
  add: (row: MessageRow) => AddResult;
  /** Called after a poll that added rows. */
  onAdded: () => void;
}

/**
 * Fills the cache from the table while it is live (open, not paused, someone subscribed), when asked
 * (`trigger()`: first subscriber, cache drained while rows are pending, the engine's sweep found due rows) and
 * when a row it knows of falls due (`expectDue`: rows written here, postponed, claimed, or read at its first
 * poll). It has no period of its own: the engine's sweep (engine/sweeper.ts) looks at each live table that
 * has not polled for a poll interval, a hundred tables a statement, and triggers a poll where rows are due.
 * A table nobody subscribes to holds no timer. Reads due rows in priority order, up to the cache size; a
 * full read (or a full cache) sets `pending`, so the send loop asks for another poll as soon as it drains
 * the cache.
 *
 * The poll holds the cache-management mutex across its read and its adds, so a post-send discard cannot
 * run between them (the poll could otherwise re-add a snapshot of a row that was just postponed). It holds
 * nothing else: the send loop keeps delivering what is cached while a slow read runs. Acks and reschedules
 * do not wait for the mutex (they must take effect at once); they record their ids with `forget`, and the
 * poll in progress skips those rows of its snapshot.
 */
export class Poller {
  private forgotten: Set<string> | undefined;
  private readonly ticker: Ticker;
  /** Payload bytes per row in the last read, on average and at most; undefined before any. */
  private rowBytes: { mean: number; max: number } | undefined;
  /** When rows fall due (rows this server wrote, and the table's at start): a poll runs then. */
  private readonly dueTimes = new DueTimes(DUE_TIMES_KEPT);
  /**
   * Due times from this one on may be missing from dueTimes (not read yet at start, or not kept when it was
   * full): once the clock is there, they are read from the table. Undefined when dueTimes knows them all.
   */
  private rereadAt: number | undefined;
  private lastReread = -Infinity;
  private rereading: Promise<void> | undefined;
  /** Polls that failed in a row. */
  private failures = 0;
  /** When the table was last looked at for due rows: a poll began, or the sweep looked. */
  private lookedAt = -Infinity;

  constructor(private readonly deps: PollerDeps) {
    this.ticker = new Ticker(
      deps.env.clock,
      Infinity,
      () => this.pollOnce().finally(() => this.armForNextDue()),
      () => deps.state.count("pollFailed"),
    );
  }

  /**
   * A row falls due at `at` (epoch ms), and nothing else will bring it into the cache then: poll at that
   * time (rounded up to DueTimes' 10 ms slot). With nobody subscribed no timer is set: the first
   * subscriber's poll reads the table's due times again (see `rest`).
   */
  expectDue(at: number): void {
    if (at <= this.deps.env.clock.now()) return;
    if (!this.deps.state.live) {
      this.rereadAt = -Infinity;
      return;
    }
    if (!this.dueTimes.add(at)) {
      // Not kept: read back from the table when the clock gets there.
      this.rereadAt = Math.min(this.rereadAt ?? Infinity, at);
      this.ticker.runBy(this.rereadAt);
      return;
    }
    const slot = DueTimes.slotOf(at);
    if (this.dueTimes.next === slot) this.ticker.runBy(slot);
  }

  /** After a poll: the next time a known row falls due starts the next poll, if it comes first. */
  private armForNextDue(): void {
    if (!this.deps.state.live) return; // nobody to poll for: `rest` left it to the next live poll
    const now = this.deps.env.clock.now();
    this.dueTimes.dropUntil(now);
    if (this.rereadAt !== undefined && now >= this.rereadAt && !this.rereading) {
      if (now - this.lastReread >= REREAD_SPACING_MS) this.rereading = this.rereadDueTimes().finally(() => (this.rereading = undefined));
      else this.ticker.runBy(this.lastReread + REREAD_SPACING_MS);
    }
    const next = this.dueTimes.next;
    if (next !== undefined) this.ticker.runBy(next);
    const retryCap = this.deps.state.options.pollIntervalMs;
    if (this.failures > 0) this.ticker.runBy(now + Math.min(retryCap, FIRST_RETRY_MS * 2 ** (this.failures - 1)));
  }

  /**
   * Reads when the table's unacked rows fall due (at start: rows written before it, by this server or
   * another; later: times DueTimes had no room for) and keeps as many as it holds.
   */
  private async rereadDueTimes(): Promise<void> {
    const { store, table, clock, log } = this.deps.env;
    const now = clock.now();
    this.lastReread = now;
    this.rereadAt = undefined;
    try {
      const times = await store.dueTimes(table, now, DUE_TIMES_KEPT);
      for (const at of times) this.expectDue(at);
      // More than were read: the rest are read once these have passed.
      if (times.length >= DUE_TIMES_KEPT) this.rereadAt = Math.min(this.rereadAt ?? Infinity, times.at(-1)!);
    } catch (err) {
      this.rereadAt = Math.min(this.rereadAt ?? Infinity, now);
      log.warn({ err, table }, "could not read when the table's messages fall due; trying again after the next poll");
    }
    if (this.rereadAt !== undefined) this.ticker.runBy(Math.max(this.rereadAt, now + REREAD_SPACING_MS));
  }

  get nextPollAt(): number {
    return this.ticker.nextAt;
  }

  /** When the table was last looked at for due rows (a poll, or the engine's sweep). */
  get lastLook(): number {
    return this.lookedAt;
  }

  /** The engine's sweep looked at `at`: rows were due (poll now) or not (nothing to do until the next look). */
  swept(due: boolean, at: number): void {
    this.lookedAt = Math.max(this.lookedAt, at);
    if (due) this.trigger();
  }

  /** Starts polling; the first poll also reads when the table's rows fall due. */
  start(): void {
    this.rereadAt = -Infinity;
    this.ticker.start();
  }

  /**
   * Nobody to poll for any more (the last subscriber left, or the table was paused): the timers of the due
   * times it knows go, and the next live poll reads them from the table again.
   */
  rest(): void {
    this.dueTimes.clear();
    this.rereadAt = -Infinity;
    this.ticker.cancelPlanned();
  }

  async stop(): Promise<void> {
    this.dueTimes.clear();
    this.rereadAt = undefined;
    await this.ticker.stop();
    await this.rereading;
  }

  trigger(): void {
    this.ticker.trigger();
  }

  /** Polls no later than `at` (epoch ms), e.g. when a rescheduled message falls due before the next poll. */
  runBy(at: number): void {
    this.ticker.runBy(at);
  }

  /** Rows of these ids in the snapshot of a poll in progress are stale: skip them. */
  forget(ids: Iterable<string>): void {
    if (!this.forgotten) return;
    for (const id of ids) this.forgotten.add(id);
  }

  /**
   * How much a poll reads. A byte-bounded read measures each row it looks at (the database reads a large
   * payload to measure it: ~0.8 ms per 100 KiB row here), so it asks for as many rows as the bound takes at
   * the size of the rows read last, twice over. A table whose rows are so large that LARGE_ROW_SHARE of
   * them fill the bound is read in one plain statement of as many rows as fit at its largest row's size:
   * at most 100 rows, so even rows larger than any seen before stay within a few times the bound.
   */
  private readSize(): { limit: number; maxBytes: number } {
    const rows = Math.max(1, Math.min(this.deps.state.options.cacheSize, this.deps.maxRows()));
    const maxBytes = this.deps.maxBytes();
    if (maxBytes === Infinity) return { limit: rows, maxBytes };
    const seen = this.rowBytes;
    if (!seen) return { limit: Math.min(rows, FIRST_POLL_ROWS), maxBytes };
    if (seen.max * LARGE_ROW_SHARE >= maxBytes)
      return { limit: Math.min(rows, Math.max(1, Math.floor(maxBytes / seen.max))), maxBytes: Infinity };
    return { limit: Math.min(rows, Math.max(MIN_POLL_ROWS, Math.ceil((2 * maxBytes) / Math.max(1, seen.mean)))), maxBytes };
  }

  private async pollOnce(): Promise<void> {
    const { env, state } = this.deps;
    if (!state.live) return;
    await this.deps.mutex.runExclusive(async () => {
      if (!state.live) return;
      this.lookedAt = env.clock.now();
      const forgotten = (this.forgotten = new Set());
      try {
        const { limit, maxBytes } = this.readSize();
        const rows = await env.store.readDue(env.table, env.clock.now(), limit, maxBytes);
        this.failures = 0;
        state.count("polls");
        state.polled(rows.length >= limit || rows.cut === true);
        if (rows.length > 0) {
          let bytes = 0;
          let max = 0;
          for (const row of rows) {
            const n = payloadBytes(row.payload);
            bytes += n;
            if (n > max) max = n;
          }
          this.rowBytes = { mean: bytes / rows.length, max };
        }
        let added = 0;
        for (const row of rows) {
          if (forgotten.has(row.id)) continue;
          const result = this.deps.add(row);
          if (result === "full") {
            state.markPending();
            break;
          }
          // Rows already cached (sending, not yet postponed) are no news: only real additions wake the
          // send loop, or a read full of sending rows would trigger poll after poll.
          if (result === "added") added++;
        }
        if (added > 0) this.deps.onAdded();
      } catch (err) {
        this.failures++;
        state.count("pollFailed");
        env.log.warn({ err, table: env.table, failures: this.failures }, "poll failed; trying again soon");
      } finally {
        this.forgotten = undefined;
      }
    });
  }
}
