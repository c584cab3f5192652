import type { Mutex } from "async-mutex";
import type { MessageRow } from "../model/messages.js";
import { backoffMs, jitter } from "../model/backoff.js";
import { DelayedArrivals } from "./delayed.js";
import { HOLD_MS } from "./holds.js";
import { InsertClaims } from "./insert-claims.js";
import type { Poller } from "./poller.js";
import type { TableEnv, TableState } from "./table-state.js";

export interface InsertPathDeps {
  env: TableEnv;
  /** The cache rows go into, the receivers (and their free credit) they go to, the options and counters. */
  state: TableState;
  /** The manager's cache-management mutex: rows enter the cache under it, as a poll's do. */
  mutex: Mutex;
  poller: Poller;
  schedulePump: () => void;
  track: (task: Promise<void>) => void;
  /** Other nodes serve this table too (MessageManager.setShared). */
  shared: () => boolean;
  /** Tells the other nodes that rows fall due at `at` (MessageManager.signalDue). */
  signalDue: (at: number) => void;
  /** Rows held until `at` went into the cache (HoldWatch.watch). */
  watchHold: (at: number) => void;
}

/**
 * One insert through this server, begun before its INSERT is sent (Inserter, via InsertPath.begin).
 */
export interface InsertTicket {
  /** Set when the due rows are to be written leased until then (see InsertPath.leaseForInsert). */
  readonly leasedUntil: number | undefined;
  /** Set when the due rows are to be written held until then (see InsertPath.holdForInsert). */
  readonly heldUntil: number | undefined;
  /**
   * The insert is over; `committed` are the rows it wrote (leased ones with `leasedUntil` set), none if it
   * failed. Rows of which no newer copy turned up meanwhile are offered (InsertPath.offer); returns how
   * many were cached or scheduled. Call exactly once.
   */
  done(committed: readonly MessageRow[]): Promise<number>;
}

/**
 * Rows committed through this server on their way into the cache (our addition: Vitess's insert path only
 * notifies, and delayed rows wait for a poll). Due rows are offered at once; delayed ones due before the
 * next poll get a timer (DelayedArrivals). Rows may be written already leased (leaseForInsert).
 *
 * From before its INSERT is sent until its rows are in the cache, an id whose row changed or that a poll
 * brought in (`forget`) is dropped from here: first by its claim (InsertClaims), then from `offered`.
 */
export class InsertPath {
  private readonly claims = new InsertClaims();
  /** Ids of committed rows waiting (for the mutex) to enter the cache; an ack or reschedule withdraws them. */
  private readonly offered = new Set<string>();
  private readonly delayed: DelayedArrivals;
  /** Rows of inserts under way that are being written leased: they will take receivers' credit. */
  private leasing = 0;
  /** Rows of inserts under way that are being written held: they will take room in the cache. */
  private holding = 0;

  constructor(private readonly deps: InsertPathDeps) {
    this.delayed = new DelayedArrivals(
      deps.env.clock,
      () => deps.state.options.cacheSize,
      (row) => void this.offerDue([row]),
    );
  }

  /**
   * Begins an insert of `ids`, `due` of which are due now: decides whether those may be written leased,
   * and claims the ids, so a copy the poller finds first (or an ack) wins over the insert's own.
   */
  begin(ids: Iterable<string>, due: number): InsertTicket {
    const leasedUntil = this.leaseForInsert(due);
    const heldUntil = leasedUntil === undefined ? this.holdForInsert(due) : undefined;
    const leasing = leasedUntil === undefined ? 0 : due;
    this.leasing += leasing;
    const holding = heldUntil === undefined ? 0 : due;
    this.holding += holding;
    const mine = this.claims.begin(ids);
    let over = false;
    return {
      leasedUntil,
      heldUntil,
      done: (committed) => {
        if (over) throw new Error("InsertTicket.done called twice");
        over = true;
        this.leasing -= leasing;
        this.holding -= holding;
        const standing = this.claims.end(mine);
        // The others were acked, rescheduled or cached by a poll meanwhile: this copy is older than that.
        return this.offer(committed.filter((r) => standing.has(r.id)));
      },
    };
  }

  /**
   * Due rows go into the cache now; delayed ones due before the next poll get a timer. Refused (returns 0)
   * when nobody is subscribed, as in Vitess: the poller finds them when someone subscribes. Returns how
   * many were cached or scheduled.
   */
  private async offer(rows: readonly MessageRow[]): Promise<number> {
    const { poller, state } = this.deps;
    const now = this.deps.env.clock.now();
    if (!state.live) {
      this.unleash(rows);
      // Nobody to send to now: the poller looks when they fall due, for a subscriber who comes by then.
      for (const row of rows) if (row.timeNext > now) poller.expectDue(row.timeNext);
      return 0;
    }
    // While a poll runs the next one is not scheduled yet: count on one interval from now.
    const nextPoll = Math.min(poller.nextPollAt, now + state.options.pollIntervalMs);
    const due: MessageRow[] = [];
    let scheduled = 0;
    for (const row of rows) {
      if (row.timeNext <= now) due.push(row);
      else if (this.delayed.schedule(row, nextPoll)) scheduled++;
      else poller.expectDue(row.timeNext); // not held here (due after the next poll, or too many timers)
    }
    return scheduled + (await this.offerDue(due));
  }

  /**
   * Our shortcut past Vitess's post-send postpone: when the table's receivers will take `count` fresh rows
   * at once (open, subscribed, room in the cache, and credit for them beyond what is queued), the insert path
   * may write them already leased: time_next = now + ackWait + backoff(0) and epoch 1, as the postpone after
   * their send would. Returns that time_next, or undefined to insert normally. A leased row sent while at
   * least ackWait of its lease is left needs no UPDATE after the send, a third of the statements per
   * message. If it cannot be sent in time, it is postponed as usual; if it cannot be cached after all (or its
   * subscribers leave), it is made due again at once.
   *
   * A lease written at insert counts a delivery before the send: a crash between the two leaves an attempt
   * counted for a message nobody got. So tables with maxAttempts never take the shortcut (a message must
   * not be dead-lettered unsent), and rows are leased only for credit that receivers have now: a message
   * waiting for a subscriber's credit is not leased, so `inFlight` counts only messages handed over (issue
   * 30: 3 enqueued for a subscriber with maxInFlight 1 counted 3 in flight).
   */
  private leaseForInsert(count: number): number | undefined {
    const { state, env } = this.deps;
    if (count === 0 || !state.live) return undefined;
    const o = state.options;
    if (o.maxAttempts > 0) return undefined;
    const { cache } = state;
    if (cache.size + this.offered.size + count > o.cacheSize) return undefined;
    const queued = cache.queuedCount + this.offered.size + this.leasing;
    if (state.receivers.freeCredit() - queued < count) return undefined;
    return env.clock.now() + o.ackWaitMs + backoffMs(o.minBackoffMs, o.maxBackoffMs, 0, jitter(env.random));
  }

  /**
   * When other nodes serve the table and `count` fresh due rows will go into this node's cache but not at once
   * to a receiver (no credit for them now), they may be written held: epoch 0 and time_next = now + HOLD_MS.
   * Other nodes' polls pass them by meanwhile, so they do not read and try to claim rows that wait in this
   * cache (each such read cost one node a claim lost); this node claims them from its cache as usual (the
   * claim accepts a row that still holds its hold). A row still here when its hold ends is due for everyone,
   * as any row, and the other nodes are told (HoldWatch): a slow receiver here does not starve another
   * node's for longer than that; a crash here delays them by at most HOLD_MS. Only a round of the receivers'
   * credit is held. Returns the hold's end, or undefined to insert normally.
   */
  private holdForInsert(count: number): number | undefined {
    const { state, env } = this.deps;
    if (count === 0 || !state.live || !this.deps.shared()) return undefined;
    const { cache, receivers } = state;
    if (cache.size + this.offered.size + this.holding + this.leasing + count > state.options.cacheSize) return undefined;
    // At most a round of the receivers' credit waits here: rows beyond it are due for the other nodes at once.
    const waiting = cache.queuedCount + this.offered.size + this.holding + this.leasing;
    if (waiting + count > receivers.totalCredit()) return undefined;
    return env.clock.now() + HOLD_MS;
  }

  /**
   * Leased or held rows that will not be sent from here after all. Leased ones are due again now, so nobody
   * waits for the lease, and with the epoch they had (the delivery their lease recorded never happened, so it
   * must not count toward maxAttempts); fenced, so a row delivered meanwhile (by a poll elsewhere) is left
   * alone. Held ones fall due when their hold ends (at most HOLD_MS): the poller here and the other nodes
   * (signalDue) look then.
   */
  unleash(rows: readonly MessageRow[]): void {
    let heldUntil = -Infinity;
    for (const r of rows) if (r.heldUntil !== undefined) heldUntil = Math.max(heldUntil, r.heldUntil);
    if (heldUntil !== -Infinity) {
      this.deps.poller.expectDue(heldUntil);
      this.deps.signalDue(heldUntil);
    }
    const deliveries = rows.filter((r) => r.leasedUntil !== undefined).map((r) => ({ id: r.id, epoch: r.epoch }));
    if (deliveries.length === 0) return;
    const { store, table, clock, log } = this.deps.env;
    const { poller } = this.deps;
    this.deps.track(
      store.updateDeliveries(table, deliveries, clock.now(), { kind: "release" }).then(
        () => poller.trigger(),
        (err: unknown) => log.warn({ err, table, count: deliveries.length }, "could not end a lease early; delivery waits for it"),
      ),
    );
  }

  /** Delayed rows waiting here on a timer (DelayedArrivals) rather than for a poll. */
  get scheduled(): number {
    return this.delayed.size;
  }

  /** No insert under way, no row waiting to enter the cache or on a timer. */
  get idle(): boolean {
    return this.claims.size === 0 && this.offered.size === 0 && this.delayed.size === 0;
  }

  /** Ids whose row changed (or that a poll brought in): no copy of them goes on from here. */
  forget(ids: readonly string[]): void {
    this.claims.supersede(ids);
    for (const id of ids) this.offered.delete(id);
    this.delayed.cancel(ids);
  }

  /** Drops the timers of delayed rows (nobody is subscribed): the poller looks for them when they fall due. */
  clearScheduled(): void {
    for (const at of this.delayed.clear()) this.deps.poller.expectDue(at);
  }

  private async offerDue(rows: readonly MessageRow[]): Promise<number> {
    if (rows.length === 0) return 0;
    const { state } = this.deps;
    const { cache } = state;
    let added = 0;
    const unleash: MessageRow[] = [];
    let heldUntil = -Infinity;
    for (const row of rows) this.offered.add(row.id);
    await this.deps.mutex.runExclusive(() => {
      const live = state.live;
      let full = false;
      for (const row of rows) {
        if (!this.offered.delete(row.id)) continue; // acked or rescheduled while it waited
        const result = live && !full ? cache.add(row) : "full";
        if (result === "full") {
          full = true;
          state.markPending(); // the poller will find the rest
          if (row.leasedUntil !== undefined || row.heldUntil !== undefined) unleash.push(row);
        } else if (result === "added") {
          added++;
          if (row.heldUntil !== undefined) heldUntil = Math.max(heldUntil, row.heldUntil);
        }
      }
    });
    if (heldUntil !== -Infinity) this.deps.watchHold(heldUntil);
    this.unleash(unleash);
    state.count("queued", added);
    if (added > 0) this.deps.schedulePump();
    return added;
  }
}
