import { Coalescer } from "../coalescer.js";
import { UnavailableError } from "../errors.js";
import type { DeliveryChange, FencedResult, Settlement, SettleGroup } from "../store/types.js";
import type { Delivery } from "../model/messages.js";
import { postponeChange, type PostponeChange } from "../store/postpone.js";
import type { DeliveriesInProgress } from "./deliveries.js";
import type { TableEnv, TableState } from "./table-state.js";

export interface SettlerDeps {
  env: TableEnv;
  /** Its options (the backoff of a postpone without a delay). */
  state: TableState;
  deliveries: DeliveriesInProgress;
  /** Ids whose rows changed: no stale copy of them may be sent. `release` also returns maxInFlight credit. */
  forget: (ids: readonly string[], release: boolean) => void;
  /** Rows fall due at `at` unless acked first: the poller looks then (Poller.expectDue). */
  expectDue: (at: number) => void;
  /** Rows were made due again at `at` (a release or a client's postpone): the poller, and other nodes, look then. */
  dueAgain: (at: number) => void;
  /** How long an ack may wait for a writer before it is refused (it was then never sent). */
  writeTimeoutMs: number;
}

/**
 * Acks and postpones by id are coalesced (coalescer.ts): requests that arrive while the
 * writers are busy share one transaction (store.settleGroups), at most GROUPS_PER_BATCH of them, each
 * with its own time. BATCHES_AT_ONCE transactions per table run at once: one, so that acks arriving under
 * load share transactions (as INSERTS_AT_ONCE in inserter.ts says); the MySQL store's batch pool
 * has two connections, so two tables settle at once. Past MAX_QUEUED waiting requests one is refused with
 * OverloadedError (429). A lone request is written at once.
 */
const GROUPS_PER_BATCH = 20;
export const BATCHES_AT_ONCE = 1;
const MAX_QUEUED = 1_000;

/**
 * What clients do to messages they were sent: ack, postpone (reschedule) and extend, by id or fenced by
 * delivery (receipts). Each one takes effect in the manager at once: cached, offered or scheduled copies of
 * the ids are dropped so a stale copy is never sent after the change.
 */
export class Settler {
  private readonly settlements: Coalescer<SettleGroup, number>;

  constructor(private readonly deps: SettlerDeps) {
    const { store, table, clock } = deps.env;
    const { writeTimeoutMs } = deps;
    this.settlements = new Coalescer<SettleGroup, number>({
      maxItems: GROUPS_PER_BATCH,
      maxQueued: MAX_QUEUED,
      concurrency: BATCHES_AT_ONCE,
      write: (groups) => store.settleGroups(table, groups),
      maxWait: { ms: writeTimeoutMs, clock, error: () => new UnavailableError(`the database took no write for ${writeTimeoutMs} ms`) },
    });
  }

  /** Writes one request's change through the coalescer; returns how many messages it changed. */
  private async settle(ids: readonly string[], change: Settlement, nowMs: number): Promise<number> {
    const [n = 0] = await this.settlements.submit([{ ids: [...ids], change, nowMs }]);
    return n;
  }

  /** Marks ids acked; returns how many this call acked. */
  async ack(ids: readonly string[]): Promise<number> {
    const { forget } = this.deps;
    const { clock } = this.deps.env;
    // Forgotten on both sides of the commit: before, so no cached copy goes out while it commits; after,
    // for a copy a poll added meanwhile from a snapshot read before the commit.
    forget(ids, true);
    const n = await this.settle(ids, { kind: "ack" }, clock.now());
    forget(ids, true);
    return n;
  }

  /**
   * A client's postpone: due again after `delayMs`, or after the table's backoff for the message's epoch
   * when no delay is given. Does not count a delivery. Returns how many unacked messages were moved.
   */
  async reschedule(ids: readonly string[], delayMs?: number): Promise<number> {
    this.deps.forget(ids, true);
    // A delivery of these ids still being recorded would overwrite this reschedule: wait for it.
    await this.deps.deliveries.settled(ids);
    const now = this.deps.env.clock.now();
    const n = await this.settle(ids, this.rescheduleChange(delayMs), now);
    this.afterReschedule(ids, n, now, delayMs);
    return n;
  }

  /** Fenced ack: acks the messages whose given delivery is still current; the others come back stale. */
  async ackDeliveries(deliveries: readonly Delivery[]): Promise<FencedResult> {
    const result = await this.fenced(deliveries, this.update({ kind: "ack" }));
    this.deps.forget(result.current, true);
    return { changed: result.changed, stale: result.stale };
  }

  /** Fenced reschedule: as `reschedule`, for the messages whose given delivery is still current. */
  async rescheduleDeliveries(deliveries: readonly Delivery[], delayMs?: number): Promise<FencedResult> {
    const result = await this.fenced(deliveries, this.update(this.rescheduleChange(delayMs)));
    this.afterReschedule(result.current, result.changed, result.now, delayMs);
    return { changed: result.changed, stale: result.stale };
  }

  /**
   * Lease extension (SQS's ChangeMessageVisibility): messages whose given delivery is still current are not
   * due before `byMs` from now. The receiver keeps its maxInFlight credit for them. Those already due later
   * are left as they are and come back `unchanged`.
   */
  async extend(deliveries: readonly Delivery[], byMs: number): Promise<FencedResult> {
    const result = await this.fenced(deliveries, this.update({ kind: "extend", byMs }));
    this.deps.forget(result.current, false); // a copy queued for redelivery (its lease ran out) is not due now
    if (result.changed > 0) this.deps.expectDue(result.now + byMs); // redelivered then, unless acked
    return { changed: result.changed, stale: result.stale, ...(result.unchanged ? { unchanged: result.unchanged } : {}) };
  }

  /**
   * Deliveries the consumer hands back unprocessed (it is closing): still current ones are due at once with
   * the epoch they had before this delivery, which therefore does not count toward maxAttempts. Their
   * receivers' credit comes back.
   */
  async release(deliveries: readonly Delivery[]): Promise<FencedResult> {
    const result = await this.fenced(deliveries, this.update({ kind: "release" }));
    this.deps.forget(result.current, true);
    if (result.changed > 0) this.deps.dueAgain(result.now + 1);
    return { changed: result.changed, stale: result.stale };
  }

  /**
   * A consumer gives up on ids for good (its handler found the message can never succeed): they move to the
   * dead-letter table at once, whatever attempts they have left. Returns how many moved.
   */
  async fail(ids: readonly string[], reason: string): Promise<number> {
    const { forget } = this.deps;
    const { store, table, clock } = this.deps.env;
    forget(ids, true); // on both sides of the commit, as an ack
    const moved = await store.deadLetter(table, [...ids], 0, reason, clock.now());
    forget(ids, true);
    return moved.length;
  }

  /** Fenced fail: as `fail`, for the messages whose given delivery is still current. */
  async failDeliveries(deliveries: readonly Delivery[], reason: string): Promise<FencedResult> {
    const { store, table } = this.deps.env;
    const result = await this.fenced(deliveries, (live, now) => store.deadLetterDeliveries(table, live, reason, now));
    this.deps.forget(result.current, true);
    return { changed: result.changed, stale: result.stale };
  }

  /**
   * Runs a fenced update. A delivery whose message is being delivered again right now is stale at once;
   * for the others, a delivery still being recorded is waited for (the check compares with its record).
   */
  private async fenced(
    deliveries: readonly Delivery[],
    write: (live: Delivery[], now: number) => Promise<FencedResult>,
  ): Promise<FencedResult & { current: string[]; now: number }> {
    const { clock } = this.deps.env;
    const inProgress = this.deps.deliveries;
    const stale: Delivery[] = [];
    const live: Delivery[] = [];
    for (const d of deliveries) {
      const underWay = inProgress.epochOf(d.id);
      (underWay !== undefined && underWay !== d.epoch ? stale : live).push(d);
    }
    if (live.length === 0) return { changed: 0, stale, current: [], now: clock.now() };
    await inProgress.settled(live.map((d) => d.id));
    const now = clock.now();
    const result = await write(live, now);
    const refused = new Set(result.stale.map((d) => `${d.id}:${d.epoch}`));
    const current = [...new Set(live.filter((d) => !refused.has(`${d.id}:${d.epoch}`)).map((d) => d.id))];
    const unchanged = result.unchanged === undefined ? {} : { unchanged: result.unchanged };
    return { changed: result.changed, stale: [...stale, ...result.stale], ...unchanged, current, now };
  }

  /** A fenced write that applies `change` to the current deliveries. */
  private update(change: DeliveryChange): (live: Delivery[], now: number) => Promise<FencedResult> {
    const { store, table } = this.deps.env;
    return (live, now) => store.updateDeliveries(table, live, now, change);
  }

  private rescheduleChange(delayMs: number | undefined): PostponeChange {
    return postponeChange(delayMs, this.deps.state.options, this.deps.env.random);
  }

  /**
   * The rescheduled rows fall due again after `delayMs`, or after their backoff, which depends on each row's
   * epoch: then their due times are read back (one statement, by primary key), so the poller looks then.
   */
  private afterReschedule(ids: readonly string[], n: number, now: number, delayMs: number | undefined): void {
    this.deps.forget(ids, true);
    if (n === 0) return;
    if (delayMs !== undefined) {
      this.deps.dueAgain(now + delayMs);
      return;
    }
    const { store, table, log } = this.deps.env;
    void store.dueTimes(table, now, ids.length, [...ids]).then(
      (times) => {
        for (const at of times) this.deps.dueAgain(at);
      },
      (err: unknown) => log.warn({ err, table }, "could not read when postponed messages fall due; the periodic poll finds them"),
    );
  }
}
