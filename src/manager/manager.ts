import type { WakeNote } from "../model/wake.js";
import { Mutex, type SemaphoreInterface } from "async-mutex";
import type { Clock } from "../clock.js";
import { ClosedError } from "../errors.js";
import { IdGenerator } from "../ids.js";
import type { Logger } from "../logger.js";
import type { TableOptions } from "../options.js";
import type { FencedResult, MessageStore, RedriveResult, SweepResult } from "../store/types.js";
import type { Delivery, MessageRow } from "../model/messages.js";
import { backoffMs, JITTER_MIN, JITTER_SPAN, type Random } from "../model/backoff.js";
import { type ByteBudget, UNBOUNDED } from "./byte-budget.js";
import { DeadLetters } from "./dead-letters.js";
import { DeliveriesInProgress } from "./deliveries.js";
import { HoldWatch } from "./holds.js";
import { InsertPath } from "./insert-path.js";
import { Poller } from "./poller.js";
import { Postponer } from "./postponer.js";
import { Purger } from "./purger.js";
import type { Receiver, ReceiverSlot } from "./receivers.js";
import { type EnqueueMessage, type EnqueueResult, Inserter } from "./inserter.js";
import { type Retried, retryWrite } from "./retry.js";
import { Settler } from "./settler.js";
import type { ManagerStats } from "./stats.js";
import { type TableEnv, TableState } from "./table-state.js";

/**
 * Most payload bytes one poll reads, whatever the cache budget has free: a poll's result is held twice while
 * it is parsed (the driver's packets and the strings), and the first batch waits for the whole read. With
 * 100 KiB payloads, a 64 MiB read held the first delivery back 2 s and the server's memory up by ~270 MB
 * (bench large-payload); 8 MiB is still 40,000 rows of the usual 200 bytes, more than a cache holds.
 */
export const POLL_MAX_BYTES = 8 * 1024 * 1024;

/**
 * After a batch's claim left rows unsent (claimed by another node, changed, or the claim failed), the poller
 * looks again this soon at the latest: rows another node won are leased, but a failed claim's are due.
 */
const CLAIM_RETRY_MS = 250;
/** Rows one statement of an operator's purge deletes (deleteUnacked): a bounded transaction, however large the table. Not the acked-row purge (purger.ts). */
export const DELETE_CHUNK = 10_000;

/**
 * A send that took longer than this (or failed) has its batch's lease renewed after it: the claim before the
 * send started the ack wait, which is the client's time to process, not the server's to write.
 */
function slowSendMs(ackWaitMs: number): number {
  return Math.min(1_000, ackWaitMs / 10);
}

export interface ManagerDeps {
  store: MessageStore;
  clock: Clock;
  random: Random;
  /** Engine-wide: bounds concurrent post-send postpones across all tables. */
  semaphore: SemaphoreInterface;
  /** Engine-wide: bounds the payload bytes all caches hold (none when absent). */
  budget?: ByteBudget;
  /** Engine-wide: bounds the payload bytes of enqueues not yet committed (none when absent). */
  enqueueBudget?: ByteBudget;
  log: Logger;
  /**
   * How long a write may wait for a writer before it is refused (never sent), and how long a write whose
   * outcome is unknown is sent again (retry.ts). Default 10 s.
   */
  writeTimeoutMs?: number;
  /** Message ids for enqueues (the engine's, shared by its tables). */
  ids?: IdGenerator;
  /** Rows waiting for an INSERT before enqueues get 429 (default 50,000). */
  maxQueuedInserts?: number;
  /**
   * Told when rows of the table are due now (no `at`) or at `at` and this manager may not be the one to
   * deliver them (committed without a lease, made due again, handed back): other nodes look (issue 25).
   */
  signalDue?: (at?: number) => void;
  /** The table's counters, when they outlive this manager (the engine's, kept across lazy managers). */
  stats?: ManagerStats;
  /** Tells the engine's sweep that this table's next look may have come sooner (Sweeper.replan). */
  replanSweep?: () => void;
}

/** When the sweep should look at a table next (epoch ms): for due rows (undefined: no need), and for acks. */
export interface SweepPlan {
  dueAt: number | undefined;
  acksAt: number;
}

export interface Subscription {
  /** Messages this receiver holds: sent and not yet acked or rescheduled (counted only with a maxInFlight). */
  readonly held: number;
  unsubscribe(): void;
}

export interface ManagerSnapshot {
  receivers: number;
  /** Rows in the cache, queued or sending. */
  cached: number;
  /** Delivered messages counted against some receiver's maxInFlight and not yet acked. */
  held: number;
  /** Delayed rows enqueued here that wait on a timer (not for a poll) to enter the cache when due. */
  scheduled: number;
  pending: boolean;
  /** Delivery is stopped (options.paused). */
  paused: boolean;
  stats: ManagerStats;
}

/**
 * MessageManager delivers the messages of one table (Vitess's messageManager, in one event loop).
 *
 * Parts: the PriorityCache is the send queue; the ReceiverSet holds subscribers with a round-robin
 * cursor; the send loop (`pump`) pops up to batchSize rows for the next idle receiver; the Postponer
 * records each delivery in the database, before its send (a claim); the Poller refills the cache from the table; the Purger deletes
 * old acked rows. Our additions: the InsertPath (rows committed here go straight into the cache, delayed
 * ones get timers, due ones may be written already leased), Holdings (what each receiver holds: its
 * maxInFlight credit), the Settler (client acks, postpones, fails and extensions, by id or fenced by
 * receipt), DeliveriesInProgress (what those wait for) and DeadLetters (maxAttempts, redrive).
 *
 * The state the parts share (cache, receivers, holdings, the pending flag, options, counters) is one
 * TableState, which each part is given with the TableEnv (table, store, clock, random, log); what a part
 * needs from another part (a poll, a pump, a forget) is one of the few functions the constructor passes.
 *
 * Concurrency. JavaScript runs one piece of code at a time, so Vitess's main mutex (`mu`) becomes "no
 * await while touching the cache or the receivers": every such section below is synchronous. What remains
 * is Vitess's cacheManagementMu, an async Mutex, because a poll spans an await (its database read):
 *  - a poll holds it across its read and its adds;
 *  - a post-send discard takes it, so it cannot land between a poll's read and its adds. Otherwise the
 *    poll could read a row before its postpone committed, and re-add it after the discard: a duplicate;
 *  - the insert path takes it to add rows it has just committed.
 * The send loop never takes it, so a slow poll does not stall delivery of what is cached (an improvement
 * over Vitess, whose poller held the main lock across the read). Acks and reschedules must take effect at
 * once, so they do not wait either: they evict queued copies and tell a poll in progress to skip the ids.
 *
 * Delivery cycle of a batch: pop (ids move to sending) → receiver busy → claim (under the engine-wide
 * semaphore; see postponer.ts) → send the rows the claim won → (a failed or slow send: its lease renewed)
 * → receiver idle → discard under the mutex.
 *
 * Several nodes (issue 25). Vitess postpones a batch after sending it, which is safe while one process
 * serves a table. Several tablemq nodes on one database read the same due rows, so the postpone became a
 * claim before the send: a row is sent only by the node whose UPDATE changed it (same statement count on
 * one node; the choice over one owner per table is explained in postponer.ts and the README). What other
 * nodes should know at once (rows due that this node may not deliver, table changes) goes out through
 * `signalDue` and the engine to the Redis bus (src/cluster/); what they say comes back as `peerDue`; and
 * while peers live without a bus, `setPollCap` makes the poller look at least every peer poll interval.
 *
 * Modes (as in Vitess): idle with no receivers (the poller does nothing, the cache is empty); steady; and
 * pending, when a poll filled the cache or an add found it full: then the loop asks for a poll as soon as
 * the cache drains, and again after each discard while it stays drained.
 *
 * open() starts the poller and purger; close() stops them, ends every subscription, abandons sends in
 * progress (their batches stay claimed: due after the ack wait) and waits for what follows them.
 */
export class MessageManager {
  /** Cache, receivers, holdings, pending flag, options and counters: what the parts below share. */
  private readonly state: TableState;
  private closing: Promise<void> | undefined;
  private readonly mutex = new Mutex();
  private readonly poller: Poller;
  private readonly purger: Purger;
  private readonly postponer: Postponer;
  private readonly tasks = new Set<Promise<void>>();
  private readonly insertPath: InsertPath;
  /** Tells the other nodes of held rows still queued here when their hold ends. */
  private readonly holds: HoldWatch;
  /** Batches popped and not yet recorded: a client reschedule or extend waits for their postpone. */
  private readonly deliveries = new DeliveriesInProgress();
  private readonly settler: Settler;
  private readonly inserter: Inserter;
  private readonly deadLetters: DeadLetters;
  private pumpScheduled = false;
  /** At most this long between polls (setPollCap), whatever the table's interval. */
  private pollCapMs: number | undefined;
  /** Other nodes serve this table too (setShared): a poll reads only what the receivers here can take. */
  private shared = false;
  /** Aborted by close(): sends in progress are abandoned rather than waited for. */
  private closeSignal = new AbortController();

  constructor(
    readonly table: string,
    options: TableOptions,
    private readonly deps: ManagerDeps,
  ) {
    const { store, clock, log, random } = deps;
    const env: TableEnv = { table, store, clock, random, log };
    const budget = deps.budget ?? UNBOUNDED();
    const state = (this.state = new TableState(options, budget, () => this.schedulePump(), deps.stats));
    this.poller = new Poller({
      env,
      state,
      mutex: this.mutex,
      maxBytes: () => Math.min(budget.freeBytes, POLL_MAX_BYTES),
      maxRows: () => this.pollRows(),
      add: (row) => {
        this.insertPath.forget([row.id]); // the poll has it: a copy on its way from the insert path is redundant
        return state.cache.add(row);
      },
      onAdded: () => this.schedulePump(),
    });
    this.purger = new Purger({ env, state });
    this.postponer = new Postponer({ env, state, semaphore: deps.semaphore });
    this.holds = new HoldWatch(
      clock,
      () => state.cache.queuedRows(),
      () => this.signalDue(),
    );
    this.insertPath = new InsertPath({
      env,
      state,
      mutex: this.mutex,
      poller: this.poller,
      schedulePump: () => this.schedulePump(),
      track: (task) => this.track(task),
      shared: () => this.shared,
      signalDue: (at) => this.signalDue(at),
      watchHold: (at) => this.holds.watch(at),
    });
    const writeTimeoutMs = deps.writeTimeoutMs ?? 10_000;
    this.settler = new Settler({
      env,
      state,
      deliveries: this.deliveries,
      forget: (ids, release) => this.forget(ids, release),
      expectDue: (at: number) => this.poller.expectDue(at),
      dueAgain: (at: number) => {
        this.poller.expectDue(at);
        this.signalDue(at);
      },
      writeTimeoutMs,
    });
    this.inserter = new Inserter({
      table,
      store,
      clock,
      ids: deps.ids ?? new IdGenerator(clock, random),
      maxQueuedInserts: deps.maxQueuedInserts ?? 50_000,
      budget: deps.enqueueBudget ?? UNBOUNDED(),
      writeTimeoutMs,
      retry: (what, ids, write) => this.retryWrite(what, ids, write),
      begin: (ids, due) => {
        const ticket = this.insertPath.begin(ids, due);
        return {
          leasedUntil: ticket.leasedUntil,
          heldUntil: ticket.heldUntil,
          done: (committed) => {
            this.announce(committed);
            return ticket.done(committed);
          },
        };
      },
    });
    this.deadLetters = new DeadLetters({
      env,
      state,
      discard: (ids) => this.discard(ids),
      poll: () => {
        if (state.live) this.poller.trigger();
        this.signalDue();
      },
    });
  }

  get options(): TableOptions {
    return this.state.options;
  }

  /** The table's counters (Vitess's MessageStats), live. */
  get stats(): ManagerStats {
    return this.state.stats;
  }

  open(): void {
    if (this.state.open) return;
    this.state.open = true;
    if (this.closeSignal.signal.aborted) this.closeSignal = new AbortController();
    this.state.markPending();
    this.poller.start();
    this.purger.start();
  }

  /** Idempotent; concurrent calls share one close. */
  close(reason = "table manager closed"): Promise<void> {
    if (this.closing) return this.closing;
    if (!this.state.open) return Promise.resolve();
    this.state.open = false;
    this.closing = (async () => {
      this.closeSignal.abort();
      const queued = this.state.cache.queuedRows();
      if (queued.length > 0) this.signalDue(); // other nodes take over what was waiting here
      this.insertPath.unleash(queued);
      // Rows still on their way in (offered, waiting for the mutex) find the manager closed and are
      // unleashed there.
      this.insertPath.clearScheduled();
      this.holds.stop();
      this.state.holdings.clear();
      for (const slot of this.state.receivers.clear()) this.notifyClosed(slot, reason);
      this.state.cache.clear();
      await Promise.all([this.poller.stop(), this.purger.stop(), Promise.allSettled([...this.tasks])]);
    })().finally(() => (this.closing = undefined));
    return this.closing;
  }

  /** Applies changed options (the engine saw the table COMMENT change). */
  configure(options: TableOptions): void {
    const wasPaused = this.state.options.paused;
    this.state.configure(options);
    this.deps.replanSweep?.();
    if (options.paused && !wasPaused) this.dropQueued();
    if (!options.paused && wasPaused) {
      this.state.markPending();
      if (this.state.live) this.poller.trigger();
      this.schedulePump();
    }
  }

  /** Whether delivery is stopped (options.paused). */
  get paused(): boolean {
    return this.state.options.paused;
  }

  subscribe(receiver: Receiver): Subscription {
    if (!this.state.open) throw new ClosedError(`table ${this.table}`);
    const slot = this.state.receivers.add(receiver);
    if (this.state.receivers.count === 1 && this.state.live) this.poller.trigger(); // the first subscriber looks for due rows
    this.schedulePump();
    return {
      get held() {
        return slot.held;
      },
      unsubscribe: () => this.unsubscribe(slot),
    };
  }

  /*
   * The table's writes: enqueue (Inserter) and the clients' settlements (Settler), each sent again while its
   * outcome is unknown, here and only here (retryWrite; an insert retries each statement inside its
   * coalescer, where it tells rows a lost attempt wrote from duplicates).
   */

  /** Validates, gives ids, writes and offers messages to the cache; see Inserter. */
  async enqueue(messages: readonly EnqueueMessage[]): Promise<EnqueueResult> {
    const result = await this.inserter.enqueue(messages);
    this.state.count("enqueued", result.ids.length - result.duplicates.length);
    return result;
  }

  /**
   * An operator deletes unacked messages outright: `ids`, or (undefined) every unacked message of the table
   * (a purge, DELETE_CHUNK rows per statement). No copy held here is sent afterwards, and the receivers that
   * hold them get their credit back (their acks then find nothing). Another node's copies fail their claim
   * (the row is gone) and are not sent either. Returns how many were deleted (a delete sent again after an
   * unknown outcome does not count what the lost attempt deleted).
   */
  async deleteUnacked(ids?: readonly string[]): Promise<number> {
    const { store } = this.deps;
    let deleted = 0;
    if (ids !== undefined) {
      this.forget(ids, true);
      deleted = (await this.retryWrite(`delete on ${this.table}`, ids, () => store.deleteUnacked(this.table, [...ids], ids.length))).value;
      this.forget(ids, true);
    } else {
      let n: number;
      do {
        n = (await this.retryWrite(`purge of ${this.table}`, [], () => store.deleteUnacked(this.table, undefined, DELETE_CHUNK))).value;
        deleted += n;
      } while (n === DELETE_CHUNK);
      this.forgetEverything();
    }
    this.state.count("deleted", deleted);
    return deleted;
  }

  /** Marks ids acked; returns how many this call acked. */
  async ack(ids: readonly string[]): Promise<number> {
    const acked = (await this.retryWrite(`ack on ${this.table}`, ids, () => this.settler.ack(ids))).value;
    this.countAcked(acked);
    return acked;
  }

  /** A client's postpone: after `delayMs`, or the table's backoff when absent; see Settler. */
  async reschedule(ids: readonly string[], delayMs?: number): Promise<number> {
    const moved = (await this.retryWrite(`postpone on ${this.table}`, ids, () => this.settler.reschedule(ids, delayMs))).value;
    this.state.count("postponed", moved);
    return moved;
  }

  /** Fenced ack: acks the messages whose given delivery is still current; the others come back stale. */
  async ackDeliveries(deliveries: readonly Delivery[]): Promise<FencedResult> {
    const result = await this.fencedWrite(`ack on ${this.table}`, deliveries, () => this.settler.ackDeliveries(deliveries));
    this.countAcked(result.changed);
    return result;
  }

  /** Fenced reschedule: as `reschedule`, for the messages whose given delivery is still current. */
  async rescheduleDeliveries(deliveries: readonly Delivery[], delayMs?: number): Promise<FencedResult> {
    const write = () => this.settler.rescheduleDeliveries(deliveries, delayMs);
    const result = await this.fencedWrite(`postpone on ${this.table}`, deliveries, write);
    this.state.count("postponed", result.changed);
    return result;
  }

  /** Deliveries handed back unprocessed: due now, the delivery uncounted (Settler.release). */
  releaseDeliveries(deliveries: readonly Delivery[]): Promise<FencedResult> {
    return this.fencedWrite(`release on ${this.table}`, deliveries, () => this.settler.release(deliveries));
  }

  /** Lease extension: current deliveries are not due again before `byMs` from now. */
  extend(deliveries: readonly Delivery[], byMs: number): Promise<FencedResult> {
    return this.fencedWrite(`extend on ${this.table}`, deliveries, () => this.settler.extend(deliveries, byMs));
  }

  /** Dead-letters ids at once, whatever attempts they have left (a consumer gave up); returns how many moved. */
  async fail(ids: readonly string[], reason: string): Promise<number> {
    const moved = (await this.retryWrite(`fail on ${this.table}`, ids, () => this.settler.fail(ids, reason))).value;
    this.state.count("failed", moved);
    return moved;
  }

  /** Fenced fail: as `fail`, for the messages whose given delivery is still current. */
  async failDeliveries(deliveries: readonly Delivery[], reason: string): Promise<FencedResult> {
    const result = await this.fencedWrite(`fail on ${this.table}`, deliveries, () => this.settler.failDeliveries(deliveries, reason));
    this.state.count("failed", result.changed);
    return result;
  }

  /** Acks committed now: counted, and purged once they pass purgeAfter. */
  private countAcked(n: number): void {
    this.state.count("acked", n);
    if (n > 0) this.purger.acked(this.deps.clock.now());
  }

  private retryWrite<T>(what: string, ids: readonly string[], write: () => Promise<T>): Promise<Retried<T>> {
    const { clock, log } = this.deps;
    return retryWrite(ids, write, { clock, log, what, windowMs: this.deps.writeTimeoutMs ?? 10_000 });
  }

  private async fencedWrite(what: string, deliveries: readonly Delivery[], write: () => Promise<FencedResult>): Promise<FencedResult> {
    return (await this.retryWrite(what, [...new Set(deliveries.map((d) => d.id))], write)).value;
  }

  /** Moves dead letters (the given ids, or all) back into the table, due now with epoch 0. */
  async redrive(ids?: readonly string[]): Promise<RedriveResult> {
    const result = await this.deadLetters.redrive(ids);
    this.state.count("redriven", result.redriven.length);
    return result;
  }

  snapshot(): ManagerSnapshot {
    return {
      receivers: this.state.receivers.count,
      cached: this.state.cache.size,
      held: this.state.holdings.size,
      scheduled: this.insertPath.scheduled,
      pending: this.state.pending,
      paused: this.state.options.paused,
      stats: { ...this.stats },
    };
  }

  /**
   * Looks for due rows now (a poll, when someone is subscribed) — for rows written into the table by
   * someone other than this server, e.g. in the application's own transaction, or by another node — and
   * again at each of `note.dueAt`; drops copies of `note.forget` (acked or postponed there) from the cache.
   */
  wake(note: WakeNote = {}): void {
    if (note.forget) this.forget(note.forget, false);
    for (const at of note.dueAt ?? []) this.poller.expectDue(at);
    this.poller.trigger();
  }

  /**
   * Another node says rows are due now (no `at`) or at `at`: look then, if the receivers here are starved
   * for work (half their credit free, nothing queued for it). Receivers kept busy by this node's own
   * messages do not reach for another node's: the rows they would read sit in that node's cache, and each
   * read here would cost that node a claim lost (bench multi-node: balanced nodes stealing each other's rows
   * ran at ~0.7 of one node). The other node says so again with its next rows; and a node with nobody
   * subscribed has nothing to do (its first subscriber's poll finds them).
   */
  peerDue(at?: number): void {
    if (!this.state.live) return;
    if (at !== undefined && at > this.deps.clock.now()) this.poller.expectDue(at);
    else if (this.starved()) this.poller.trigger();
  }

  /** The receivers have at least half their credit free beyond what is queued for them (all of it when unbounded). */
  private starved(): boolean {
    const { receivers, cache } = this.state;
    const queued = cache.queuedCount;
    const total = receivers.totalCredit();
    if (total === Infinity) return queued === 0;
    return 2 * (receivers.freeCredit() - queued) >= total;
  }

  /**
   * Polls at least every `ms` (other nodes exist and no bus wakes us), or (undefined) at the table's own
   * poll interval again.
   */
  setPollCap(ms: number | undefined): void {
    this.pollCapMs = ms;
    this.deps.replanSweep?.();
  }

  /**
   * A node stopped without handing back what it was sending: its deliveries fall due within an ack wait and
   * a first backoff from now (later ones with more backoff are found by the periodic poll). Look then.
   */
  expectPeerRedeliveries(): void {
    const o = this.state.options;
    this.poller.expectDue(this.deps.clock.now() + o.ackWaitMs + backoffMs(o.minBackoffMs, o.maxBackoffMs, 0, JITTER_MIN + JITTER_SPAN));
  }

  /**
   * Other nodes on the database serve this table too (or no longer). Then a poll reads only what this
   * node's receivers have credit for (at least a batch), not a whole cache: due rows read here sit in this
   * cache, where the other nodes' polls read them too, and every row two nodes hold costs one of them a claim
   * lost. On one node the cache is filled, as in Vitess. (Bench multi-node: full-cache reads woken by the
   * other node made each message read ~10 times, and two nodes ran at half the throughput of one.)
   */
  setShared(shared: boolean): void {
    this.shared = shared;
  }

  /**
   * When the engine's sweep (engine/sweeper.ts) should look at this table next: for due rows a poll interval
   * (or the peers' cap) after the last look, while someone is subscribed (undefined otherwise: nobody to
   * deliver to); for acked rows to purge, a poll interval after the last look.
   */
  nextSweep(): SweepPlan {
    const acksAt = this.acksLookedAt + this.state.options.pollIntervalMs;
    return { dueAt: this.state.live ? this.poller.lastLook + this.pollIntervalMs() : undefined, acksAt };
  }

  /** When the table's oldest ack was last read (a purge here, or the sweep). */
  get acksLookedAt(): number {
    return this.purger.lastLook;
  }

  /** What the sweep found at `at`: a poll if rows are due, a purge planned for the oldest ack. */
  swept(result: SweepResult, at: number): void {
    this.purger.looked(result.oldestAck, at);
    if (result.due !== undefined) this.poller.swept(result.due && this.state.live, at);
  }

  /**
   * Nothing here would be lost by closing the manager now: nobody subscribed, nothing cached, held, scheduled
   * or on its way (an insert's rows, sends, claims, burials). Calls in progress are the caller's to count
   * (engine/table-entry.ts). The engine releases such a manager after a while (lazy managers).
   */
  get idle(): boolean {
    const { state } = this;
    return (
      state.open &&
      state.receivers.count === 0 &&
      state.cache.size === 0 &&
      state.holdings.size === 0 &&
      this.tasks.size === 0 &&
      this.insertPath.idle
    );
  }

  /** Rows a poll may read (the cache size caps it). */
  private pollRows(): number {
    const { options, receivers, cache } = this.state;
    if (!this.shared) return options.cacheSize;
    return Math.max(options.batchSize, receivers.freeCredit() - cache.queuedCount);
  }

  private pollIntervalMs(): number {
    const own = this.state.options.pollIntervalMs;
    return this.pollCapMs === undefined ? own : Math.min(own, this.pollCapMs);
  }

  private signalDue(at?: number): void {
    const signal = this.deps.signalDue;
    if (!signal) return;
    if (at === undefined || at <= this.deps.clock.now()) signal();
    else signal(at);
  }

  /**
   * Rows an insert committed: those due now that it did not lease for a receiver here, and delayed ones, may
   * be someone else's to deliver: other nodes are told (the earliest delayed time is enough of a hint).
   */
  private announce(committed: readonly MessageRow[]): void {
    if (!this.deps.signalDue || committed.length === 0) return;
    const now = this.deps.clock.now();
    let dueNow = false;
    let next = Infinity;
    for (const r of committed) {
      if (r.timeNext <= now) dueNow ||= r.leasedUntil === undefined && r.heldUntil === undefined;
      else next = Math.min(next, r.timeNext);
    }
    if (dueNow) this.signalDue();
    if (next !== Infinity) this.signalDue(next);
  }

  /**
   * Ids whose rows changed (acked, rescheduled, extended): copies queued, offered, scheduled or being polled
   * are dropped, so no stale copy is sent; `release` also returns the receivers' credit for them.
   */
  private forget(ids: readonly string[], release: boolean): void {
    this.insertPath.forget(ids);
    this.state.cache.evict(ids);
    this.poller.forget(ids);
    if (release) this.state.holdings.release(ids);
  }

  /** Every message's copies are dropped (the table was purged): queued, scheduled, and what receivers hold. */
  private forgetEverything(): void {
    const queued = this.state.cache.queuedRows().map((r) => r.id);
    this.forget(queued, false);
    this.insertPath.clearScheduled();
    this.state.holdings.releaseAll();
    this.state.markPending(); // rows enqueued meanwhile are in the table
  }

  private unsubscribe(slot: ReceiverSlot): void {
    if (!this.state.receivers.remove(slot)) return;
    this.state.holdings.forgetReceiver(slot);
    if (this.state.receivers.count === 0) this.dropQueued();
    this.schedulePump();
  }

  /**
   * Nobody to send to (the last receiver left, or the table was paused): forget what is queued (it stays due
   * in the table) and look again when there is. In-flight ids stay until their discard so a poll cannot
   * re-add them meanwhile.
   */
  private dropQueued(): void {
    const queued = this.state.cache.queuedRows();
    this.state.cache.evict(queued.map((r) => r.id));
    this.insertPath.unleash(queued);
    this.insertPath.clearScheduled();
    this.state.markPending();
    if (!this.state.live) this.poller.rest();
    if (queued.length > 0 && !this.state.options.paused) this.signalDue(); // due and nobody's here: perhaps someone's elsewhere
  }

  private notifyClosed(slot: ReceiverSlot, reason: string): void {
    try {
      slot.receiver.onClose?.(reason);
    } catch (err) {
      this.deps.log.warn({ err, table: this.table }, "receiver onClose threw");
    }
  }

  private schedulePump(): void {
    if (this.pumpScheduled || !this.state.open) return;
    this.pumpScheduled = true;
    // A microtask, so rows added in one synchronous burst go out as full batches.
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** The send loop: hands batches to idle receivers while there is something to send. */
  private pump(): void {
    while (this.state.live) {
      if (this.state.cache.isEmpty()) {
        this.requestPollIfPending();
        return;
      }
      if (!this.sendNextBatch()) return;
    }
  }

  /**
   * Gives the next idle receiver (round robin) a batch. A redelivered message is not given back to a
   * receiver that was sent it and never acked it while another receiver with credit left has not had it
   * (that one may only be busy sending): it waits for that one. Returns false when no idle receiver can
   * take anything now.
   */
  private sendNextBatch(): boolean {
    for (let tries = this.state.receivers.count; tries > 0; tries--) {
      const slot = this.state.receivers.nextIdle();
      if (!slot) return false;
      const credit = slot.maxInFlight > 0 ? slot.maxInFlight - slot.held : Infinity;
      const popped = this.state.cache.popBatch(Math.min(this.state.options.batchSize, credit), this.redeliveryFilter(slot));
      if (popped.length > 0) {
        const { send, bury } = this.deadLetters.sort(popped);
        if (bury) this.track(bury);
        if (send.length > 0) this.track(this.deliver(slot, send));
        return true;
      }
    }
    return false;
  }

  private redeliveryFilter(slot: ReceiverSlot): ((row: MessageRow) => boolean) | undefined {
    if (this.state.holdings.size === 0) return undefined;
    const others = this.state.receivers.all().filter((r) => r !== slot && r.hasCredit);
    if (others.length === 0) return undefined;
    return (row) => !this.state.holdings.holds(slot, row.id) || others.every((r) => this.state.holdings.holds(r, row.id));
  }

  /**
   * Shared with other nodes, rows left in the table after a read that filled what the receivers could take
   * are, as often as not, rows another node has queued for its own receivers: this node reads on only when
   * its receivers are starved (the periodic poll still comes).
   */
  private requestPollIfPending(): void {
    if (this.state.pending && this.state.live && (!this.shared || this.starved())) this.poller.trigger();
  }

  private async deliver(slot: ReceiverSlot, popped: MessageRow[]): Promise<void> {
    slot.sending = true;
    const recorded = this.deliveries.begin(popped);
    let batch: MessageRow[];
    try {
      const claimed = await this.postponer.claim(popped);
      batch = claimed.rows;
      if (claimed.dueAt !== undefined) this.poller.expectDue(claimed.dueAt); // redelivered then, unless acked
    } finally {
      recorded();
    }
    if (batch.length < popped.length) this.poller.expectDue(this.deps.clock.now() + CLAIM_RETRY_MS);
    if (batch.length > 0) {
      this.state.count("sent", batch.length);
      this.state.count("delayed", batch.filter((r) => r.epoch >= 1).length);
      this.state.holdings.hold(
        slot,
        batch.map((r) => r.id),
      );
      const started = this.deps.clock.now();
      const sent = await this.send(slot, batch);
      if (!sent || this.deps.clock.now() - started > slowSendMs(this.state.options.ackWaitMs)) {
        const due = await this.postponer.afterSlowSend(batch);
        if (due !== undefined) this.poller.expectDue(due);
      }
    }
    slot.sending = false;
    await this.discard(popped.map((r) => r.id));
  }

  /** A delivery (or burial) is over: the ids leave the cache's sending set, under the mutex. */
  private async discard(ids: readonly string[]): Promise<void> {
    this.schedulePump();
    await this.mutex.runExclusive(() => this.state.cache.discard([...ids]));
    if (this.state.cache.isEmpty()) this.requestPollIfPending();
  }

  /**
   * Sends a batch. A send that does not finish within the ack wait (a subscriber that stopped reading its
   * socket) is given up as failed: false, and the batch goes to others after the ack wait plus backoff.
   */
  private async send(slot: ReceiverSlot, batch: MessageRow[]): Promise<boolean> {
    const tooSlow = new AbortController();
    const timer = this.deps.clock.setTimeout(() => tooSlow.abort(), this.state.options.ackWaitMs);
    try {
      await slot.send(batch, this.closeSignal.signal, tooSlow.signal);
      return true;
    } catch (err) {
      this.state.count("sendFailed", batch.length);
      this.state.holdings.release(
        batch.map((r) => r.id),
        slot,
      );
      this.deps.log.debug({ err, table: this.table, count: batch.length }, "send failed; due again after an ack wait and backoff");
      return false;
    } finally {
      this.deps.clock.clearTimeout(timer);
    }
  }

  private track(task: Promise<void>): void {
    this.tasks.add(task);
    void task.finally(() => this.tasks.delete(task));
  }
}
