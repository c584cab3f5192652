import { Mutex, type SemaphoreInterface } from "async-mutex";
import type { Clock } from "../clock.js";
import { ClosedError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { TableOptions } from "../options.js";
import type { Delivery, DeliveryChange, FencedResult, MessageRow, MessageStore, RedriveResult } from "../store/types.js";
import type { Random } from "./backoff.js";
import { backoffMs, jitter } from "./backoff.js";
import { PriorityCache } from "./cache.js";
import { DelayedArrivals } from "./delayed.js";
import { DeliveriesInProgress } from "./deliveries.js";
import { Leases } from "./leases.js";
import { Poller } from "./poller.js";
import { Postponer } from "./postponer.js";
import { Purger } from "./purger.js";
import { type Receiver, ReceiverSet, type ReceiverSlot } from "./receivers.js";
import { type ManagerStats, newStats } from "./stats.js";

/** Dead letters moved back per statement when redriving all of them. */
export const REDRIVE_CHUNK = 1000;

export interface ManagerDeps {
  store: MessageStore;
  clock: Clock;
  random: Random;
  /** Engine-wide: bounds concurrent post-send postpones across all tables. */
  semaphore: SemaphoreInterface;
  log: Logger;
}

export interface Subscription {
  /** Messages sent to this receiver and not yet acked or rescheduled (counted only with a maxInFlight). */
  readonly inFlight: number;
  unsubscribe(): void;
}

export interface ManagerSnapshot {
  receivers: number;
  /** Rows in the cache, queued or in flight. */
  cached: number;
  /** Delivered messages counted against some receiver's maxInFlight and not yet acked. */
  leased: number;
  pending: boolean;
  stats: ManagerStats;
}

/**
 * MessageManager delivers the messages of one table (Vitess's messageManager, in one event loop).
 *
 * Parts: the PriorityCache is the send queue; the ReceiverSet holds subscribers with a round-robin
 * cursor; the send loop (`pump`) pops up to batchSize rows for the next idle receiver; the Postponer
 * records each delivery in the database; the Poller refills the cache from the table; the Purger deletes
 * old acked rows; DelayedArrivals and Leases are our additions (timers for delayed messages enqueued here,
 * and maxInFlight credit).
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
 * Delivery cycle of a batch: pop (ids move to in flight) → receiver busy → send → postpone (under the
 * engine-wide semaphore, even if the send failed) → receiver idle → discard under the mutex.
 *
 * Modes (as in Vitess): idle with no receivers (the poller does nothing, the cache is empty); steady; and
 * pending, when a poll filled the cache or an add found it full: then the loop asks for a poll as soon as
 * the cache drains, and again after each discard while it stays drained.
 *
 * open() starts the poller and purger; close() stops them, ends every subscription, abandons sends in
 * progress and waits for the postpones that follow them.
 */
export class MessageManager {
  readonly stats: ManagerStats = newStats();
  private opts: TableOptions;
  private isOpen = false;
  private closing: Promise<void> | undefined;
  private readonly cache: PriorityCache;
  private readonly receivers = new ReceiverSet();
  private readonly leases: Leases;
  private readonly mutex = new Mutex();
  private readonly poller: Poller;
  private readonly purger: Purger;
  private readonly postponer: Postponer;
  private readonly delayed: DelayedArrivals;
  private readonly tasks = new Set<Promise<void>>();
  /** Ids of committed rows waiting (for the mutex) to enter the cache; an ack or reschedule withdraws them. */
  private readonly offered = new Set<string>();
  /** Batches popped and not yet recorded: a client reschedule or extend waits for their postpone. */
  private readonly deliveries = new DeliveriesInProgress();
  private pumpScheduled = false;
  /** Aborted by close(): sends in progress are abandoned rather than waited for. */
  private closeSignal = new AbortController();

  constructor(
    readonly table: string,
    options: TableOptions,
    private readonly deps: ManagerDeps,
  ) {
    this.opts = options;
    const { store, clock, log } = deps;
    this.cache = new PriorityCache(options.cacheSize);
    this.leases = new Leases(() => this.schedulePump());
    this.poller = new Poller({
      clock,
      store,
      table,
      mutex: this.mutex,
      log,
      intervalMs: options.pollIntervalMs,
      limit: () => this.opts.cacheSize,
      hasReceivers: () => this.receivers.count > 0,
      add: (row) => {
        this.delayed.cancel([row.id]);
        this.offered.delete(row.id); // the poll has it: a waiting insert-path copy is redundant
        return this.cache.add(row);
      },
      onAdded: () => this.schedulePump(),
      onPolled: () => this.stats.polls++,
      onFailed: () => this.stats.pollFailed++,
    });
    this.purger = new Purger({
      clock,
      store,
      table,
      log,
      intervalMs: options.pollIntervalMs,
      purgeAfterMs: () => this.opts.purgeAfterMs,
      onPurged: (n) => (this.stats.purged += n),
      onFailed: () => this.stats.purgeFailed++,
    });
    this.postponer = new Postponer({
      clock,
      store,
      table,
      log,
      random: deps.random,
      semaphore: deps.semaphore,
      options: () => this.opts,
      onFailed: () => this.stats.postponeFailed++,
    });
    this.delayed = new DelayedArrivals(clock, () => this.opts.cacheSize, (row) => void this.offerDue([row]));
  }

  get options(): TableOptions {
    return this.opts;
  }

  get opened(): boolean {
    return this.isOpen;
  }

  open(): void {
    if (this.isOpen) return;
    this.isOpen = true;
    if (this.closeSignal.signal.aborted) this.closeSignal = new AbortController();
    this.poller.pending = true;
    this.poller.start();
    this.purger.start();
  }

  /** Idempotent; concurrent calls share one close. */
  close(reason = "table manager closed"): Promise<void> {
    if (this.closing) return this.closing;
    if (!this.isOpen) return Promise.resolve();
    this.isOpen = false;
    this.closing = (async () => {
      this.closeSignal.abort();
      this.unleash(this.cache.queuedRows());
      this.delayed.clear();
      this.offered.clear();
      this.leases.clear();
      for (const slot of this.receivers.clear()) this.notifyClosed(slot, reason);
      this.cache.clear();
      await Promise.all([this.poller.stop(), this.purger.stop(), Promise.allSettled([...this.tasks])]);
    })().finally(() => (this.closing = undefined));
    return this.closing;
  }

  /** Applies changed options (the engine saw the table COMMENT change). */
  configure(options: TableOptions): void {
    this.opts = options;
    this.cache.resize(options.cacheSize);
    this.poller.setInterval(options.pollIntervalMs);
    this.purger.setInterval(options.pollIntervalMs);
  }

  subscribe(receiver: Receiver): Subscription {
    if (!this.isOpen) throw new ClosedError(`table ${this.table}`);
    const slot = this.receivers.add(receiver);
    if (this.receivers.count === 1) this.poller.trigger(); // the first subscriber looks for due rows
    this.schedulePump();
    return {
      get inFlight() {
        return slot.held;
      },
      unsubscribe: () => this.unsubscribe(slot),
    };
  }

  /**
   * The insert path: rows just committed through this server. Due rows go into the cache now; delayed
   * ones due before the next poll get a timer. Refused (returns 0) when nobody is subscribed, as in
   * Vitess: the poller finds them when someone subscribes. Returns how many were cached or scheduled.
   */
  async offer(rows: readonly MessageRow[]): Promise<number> {
    if (!this.isOpen || this.receivers.count === 0) {
      this.unleash(rows);
      return 0;
    }
    const now = this.deps.clock.now();
    // While a poll runs the next one is not scheduled yet: count on one interval from now.
    const nextPoll = Math.min(this.poller.nextPollAt, now + this.opts.pollIntervalMs);
    const due: MessageRow[] = [];
    let scheduled = 0;
    for (const row of rows) {
      if (row.timeNext <= now) due.push(row);
      else if (this.delayed.schedule(row, nextPoll)) scheduled++;
    }
    return scheduled + (await this.offerDue(due));
  }

  /**
   * Our shortcut past Vitess's post-send postpone: when this table can take `count` fresh rows into its
   * cache right now (open, subscribed, room to spare), the insert path may write them already leased:
   * time_next = now + ackWait + backoff(0) and epoch 1, as the postpone after their send would. Returns that
   * time_next, or undefined to insert normally. A leased row sent while at least ackWait of its lease is
   * left needs no UPDATE after the send, a third of the statements per message. If it cannot be sent in
   * time, it is postponed as usual; if it cannot be cached after all (or its subscribers leave), it is made
   * due again at once. A crash leaves it to be delivered when the lease ends, as a lost send would be.
   */
  leaseForInsert(count: number): number | undefined {
    if (!this.isOpen || this.receivers.count === 0) return undefined;
    if (this.cache.size + this.offered.size + count > this.opts.cacheSize) return undefined;
    const { clock, random } = this.deps;
    return clock.now() + this.opts.ackWaitMs + backoffMs(this.opts.minBackoffMs, this.opts.maxBackoffMs, 0, jitter(random));
  }

  /** Marks ids acked; returns how many this call acked. */
  async ack(ids: readonly string[]): Promise<number> {
    // Forgotten on both sides of the commit: before, so no cached copy goes out while it commits; after,
    // for a copy a poll added meanwhile from a snapshot read before the commit.
    this.forget(ids);
    const n = await this.deps.store.ack(this.table, [...ids], this.deps.clock.now());
    this.forget(ids);
    this.stats.acked += n;
    return n;
  }

  /**
   * A client's postpone: due again after `delayMs`, or after the table's backoff for the message's epoch
   * when no delay is given. Does not count a delivery. Returns how many unacked messages were moved.
   */
  async reschedule(ids: readonly string[], delayMs?: number): Promise<number> {
    const { store, clock } = this.deps;
    this.forget(ids);
    // A delivery of these ids still being recorded would overwrite this reschedule: wait for it.
    await this.deliveries.settled(ids);
    const now = clock.now();
    const change = this.rescheduleChange(delayMs);
    const n =
      change.kind === "backoff"
        ? await store.postpone(this.table, [...ids], now, change.spec)
        : await store.reschedule(this.table, [...ids], now, delayMs ?? 0);
    this.afterReschedule(ids, n, now, delayMs);
    return n;
  }

  /** Fenced ack: acks the messages whose given delivery is still current; the others come back stale. */
  async ackDeliveries(deliveries: readonly Delivery[]): Promise<FencedResult> {
    const result = await this.fenced(deliveries, () => ({ kind: "ack" }));
    this.forget(result.current);
    this.stats.acked += result.changed;
    return { changed: result.changed, stale: result.stale };
  }

  /** Fenced reschedule: as `reschedule`, for the messages whose given delivery is still current. */
  async rescheduleDeliveries(deliveries: readonly Delivery[], delayMs?: number): Promise<FencedResult> {
    const result = await this.fenced(deliveries, () => this.rescheduleChange(delayMs));
    this.afterReschedule(result.current, result.changed, result.now, delayMs);
    return { changed: result.changed, stale: result.stale };
  }

  /**
   * Lease extension (SQS's ChangeMessageVisibility): messages whose given delivery is still current are not
   * due before `byMs` from now. The receiver keeps its maxInFlight credit for them.
   */
  async extend(deliveries: readonly Delivery[], byMs: number): Promise<FencedResult> {
    const result = await this.fenced(deliveries, () => ({ kind: "extend", byMs }));
    this.withdraw(result.current); // a copy queued for redelivery (its lease ran out) is not due now
    return { changed: result.changed, stale: result.stale };
  }

  /**
   * Moves dead letters back into the table, due now with epoch 0: the given ids, or all of them (in
   * statements of REDRIVE_CHUNK). Conflicts (the id is in use again) stay dead.
   */
  async redrive(ids?: readonly string[]): Promise<RedriveResult> {
    const { store, clock } = this.deps;
    const total: RedriveResult = { redriven: [], missing: [], conflicts: [] };
    for (;;) {
      const r = await store.redrive(this.table, ids === undefined ? undefined : [...ids], clock.now(), REDRIVE_CHUNK);
      total.redriven.push(...r.redriven);
      total.missing.push(...r.missing);
      total.conflicts.push(...r.conflicts);
      if (ids !== undefined || r.redriven.length < REDRIVE_CHUNK) break;
    }
    this.stats.redriven += total.redriven.length;
    if (total.redriven.length > 0 && this.receivers.count > 0) this.poller.trigger();
    return total;
  }

  snapshot(): ManagerSnapshot {
    return {
      receivers: this.receivers.count,
      cached: this.cache.size,
      leased: this.leases.size,
      pending: this.poller.pending,
      stats: { ...this.stats },
    };
  }

  /** Runs a poll now (tests and operators). */
  pollNow(): void {
    this.poller.trigger();
  }

  /** Runs a purge now (tests and operators). */
  purgeNow(): void {
    this.purger.trigger();
  }

  /**
   * Runs a fenced update. A delivery whose message is being delivered again right now is stale at once;
   * for the others, a delivery still being recorded is waited for (the check compares with its record).
   */
  private async fenced(
    deliveries: readonly Delivery[],
    change: () => DeliveryChange,
  ): Promise<FencedResult & { current: string[]; now: number }> {
    const stale: Delivery[] = [];
    const live: Delivery[] = [];
    for (const d of deliveries) {
      const underWay = this.deliveries.epochOf(d.id);
      (underWay !== undefined && underWay !== d.epoch ? stale : live).push(d);
    }
    if (live.length === 0) return { changed: 0, stale, current: [], now: this.deps.clock.now() };
    await this.deliveries.settled(live.map((d) => d.id));
    const now = this.deps.clock.now();
    const result = await this.deps.store.updateDeliveries(this.table, live, now, change());
    const refused = new Set(result.stale.map((d) => `${d.id}:${d.epoch}`));
    const current = [...new Set(live.filter((d) => !refused.has(`${d.id}:${d.epoch}`)).map((d) => d.id))];
    return { changed: result.changed, stale: [...stale, ...result.stale], current, now };
  }

  private rescheduleChange(delayMs: number | undefined): DeliveryChange {
    if (delayMs !== undefined) return { kind: "reschedule", delayMs };
    const o = this.opts;
    const spec = { baseDelayMs: 0, minBackoffMs: o.minBackoffMs, maxBackoffMs: o.maxBackoffMs, jitter: jitter(this.deps.random), incrementEpoch: false };
    return { kind: "backoff", spec };
  }

  private afterReschedule(ids: readonly string[], n: number, now: number, delayMs: number | undefined): void {
    this.forget(ids);
    this.stats.postponed += n;
    // An explicit short delay should not wait for the next periodic poll.
    if (n > 0 && delayMs !== undefined && this.receivers.count > 0) this.poller.runBy(now + delayMs);
  }

  private async offerDue(rows: readonly MessageRow[]): Promise<number> {
    if (rows.length === 0) return 0;
    let added = 0;
    const unleash: MessageRow[] = [];
    for (const row of rows) this.offered.add(row.id);
    await this.mutex.runExclusive(() => {
      const live = this.isOpen && this.receivers.count > 0;
      let full = false;
      for (const row of rows) {
        if (!this.offered.delete(row.id)) continue; // acked or rescheduled while it waited
        const result = live && !full ? this.cache.add(row) : "full";
        if (result === "full") {
          full = true;
          this.poller.pending = true; // the poller will find the rest
          if (row.leasedUntil !== undefined) unleash.push(row);
        } else if (result === "added") added++;
      }
    });
    this.unleash(unleash);
    this.stats.queued += added;
    if (added > 0) this.schedulePump();
    return added;
  }

  /** Leased rows that will not be sent from here after all: due again now, so nobody waits for the lease. */
  private unleash(rows: readonly MessageRow[]): void {
    const ids = rows.filter((r) => r.leasedUntil !== undefined).map((r) => r.id);
    if (ids.length === 0) return;
    this.track(
      this.deps.store.reschedule(this.table, ids, this.deps.clock.now(), 0).then(
        () => this.poller.trigger(),
        (err: unknown) => this.deps.log.warn({ err, table: this.table, count: ids.length }, "could not end a lease early; delivery waits for it"),
      ),
    );
  }

  /** Ids acked or rescheduled: no stale copy of them may be sent, and their leases end. */
  private forget(ids: readonly string[]): void {
    this.withdraw(ids);
    this.leases.release(ids);
  }

  /** Ids whose row changed: copies queued, offered, scheduled or being polled are dropped. */
  private withdraw(ids: readonly string[]): void {
    for (const id of ids) this.offered.delete(id);
    this.cache.evict(ids);
    this.delayed.cancel(ids);
    this.poller.forget(ids);
  }

  private unsubscribe(slot: ReceiverSlot): void {
    if (!this.receivers.remove(slot)) return;
    this.leases.dropSlot(slot);
    if (this.receivers.count === 0) {
      // Nobody to send to: forget what is queued (it stays due in the table) and look again on the next
      // subscribe. In-flight ids stay until their discard so a poll cannot re-add them meanwhile.
      const queued = this.cache.queuedRows();
      this.cache.evict(queued.map((r) => r.id));
      this.unleash(queued);
      this.delayed.clear();
      this.poller.pending = true;
    }
    this.schedulePump();
  }

  private notifyClosed(slot: ReceiverSlot, reason: string): void {
    try {
      slot.receiver.onClose?.(reason);
    } catch (err) {
      this.deps.log.warn({ err, table: this.table }, "receiver onClose threw");
    }
  }

  private schedulePump(): void {
    if (this.pumpScheduled || !this.isOpen) return;
    this.pumpScheduled = true;
    // A microtask, so rows added in one synchronous burst go out as full batches.
    queueMicrotask(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** The send loop: hands batches to idle receivers while there is something to send. */
  private pump(): void {
    while (this.isOpen) {
      if (this.cache.isEmpty()) {
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
    for (let tries = this.receivers.count; tries > 0; tries--) {
      const slot = this.receivers.nextIdle();
      if (!slot) return false;
      const credit = slot.maxInFlight > 0 ? slot.maxInFlight - slot.held : Infinity;
      const popped = this.cache.popBatch(Math.min(this.opts.batchSize, credit), this.redeliveryFilter(slot));
      if (popped.length > 0) {
        const batch = this.buryExhausted(popped);
        if (batch.length > 0) this.track(this.deliver(slot, batch));
        return true;
      }
    }
    return false;
  }

  private redeliveryFilter(slot: ReceiverSlot): ((row: MessageRow) => boolean) | undefined {
    if (this.leases.size === 0) return undefined;
    const others = this.receivers.all().filter((r) => r !== slot && r.hasCredit);
    if (others.length === 0) return undefined;
    return (row) => !this.leases.holds(slot, row.id) || others.every((r) => this.leases.holds(r, row.id));
  }

  /**
   * Rows delivered maxAttempts times already go to the dead-letter table instead of a receiver (our
   * addition: Vitess redelivers forever). Returns the rows to send.
   */
  private buryExhausted(rows: MessageRow[]): MessageRow[] {
    const max = this.opts.maxAttempts;
    if (max <= 0 || rows.every((r) => r.epoch < max)) return rows;
    this.track(this.bury(rows.filter((r) => r.epoch >= max), max));
    return rows.filter((r) => r.epoch < max);
  }

  private async bury(rows: readonly MessageRow[], maxAttempts: number): Promise<void> {
    const { store, clock, log } = this.deps;
    const ids = rows.map((r) => r.id);
    try {
      const reason = `delivered ${maxAttempts} time${maxAttempts === 1 ? "" : "s"} without an ack (maxAttempts ${maxAttempts})`;
      const moved = await store.deadLetter(this.table, ids, maxAttempts, reason, clock.now());
      this.stats.deadLettered += moved.length;
      this.leases.release(moved);
    } catch (err) {
      this.stats.deadLetterFailed += ids.length;
      log.warn({ err, table: this.table, count: ids.length }, "could not dead-letter messages; retrying after the ack wait");
      // Left due in the table: try again after an ack wait, not at every poll.
      await store.reschedule(this.table, ids, clock.now(), this.opts.ackWaitMs).catch(() => {});
    }
    await this.mutex.runExclusive(() => this.cache.discard(ids));
    this.schedulePump();
  }

  private requestPollIfPending(): void {
    if (this.poller.pending && this.receivers.count > 0) this.poller.trigger();
  }

  private async deliver(slot: ReceiverSlot, batch: MessageRow[]): Promise<void> {
    const ids = batch.map((r) => r.id);
    const recorded = this.deliveries.begin(batch);
    slot.sending = true;
    this.stats.sent += batch.length;
    this.stats.delayed += batch.filter((r) => r.epoch >= 1).length;
    this.leases.grant(slot, ids);
    try {
      await this.send(slot, batch);
      // Rows leased at insert with at least an ack wait of lease left are already recorded.
      const now = this.deps.clock.now();
      const unrecorded = batch.filter((r) => r.leasedUntil === undefined || r.leasedUntil - now < this.opts.ackWaitMs);
      if (unrecorded.length > 0) {
        const leased = new Set(unrecorded.filter((r) => r.leasedUntil !== undefined).map((r) => r.id));
        await this.postponer.afterSend(unrecorded.map((r) => r.id), leased);
      }
    } finally {
      recorded();
    }
    slot.sending = false;
    this.schedulePump();
    await this.mutex.runExclusive(() => this.cache.discard(ids));
    if (this.cache.isEmpty()) this.requestPollIfPending();
  }

  /**
   * Sends a batch. A send that does not finish within the ack wait (a subscriber that stopped reading its
   * socket) is given up as failed: the batch is recorded and goes to others after the ack wait plus backoff.
   */
  private async send(slot: ReceiverSlot, batch: MessageRow[]): Promise<void> {
    const tooSlow = new AbortController();
    const timer = this.deps.clock.setTimeout(() => tooSlow.abort(), this.opts.ackWaitMs);
    try {
      await slot.send(batch, this.closeSignal.signal, tooSlow.signal);
    } catch (err) {
      this.stats.sendFailed += batch.length;
      this.leases.release(batch.map((r) => r.id), slot);
      this.deps.log.debug({ err, table: this.table, count: batch.length }, "send failed; postponing anyway");
    } finally {
      this.deps.clock.clearTimeout(timer);
    }
  }

  private track(task: Promise<void>): void {
    this.tasks.add(task);
    void task.finally(() => this.tasks.delete(task));
  }
}
