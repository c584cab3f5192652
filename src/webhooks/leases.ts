import type { Clock, TimerHandle } from "../clock.js";
import type { Logger } from "../logger.js";
import { type WebhookLeaseStore, type WebhookRef, webhookLeaseKey } from "../store/cluster-types.js";

export const DEFAULT_WEBHOOK_LEASE_TTL_MS = 10_000;

/** How a registry shares its webhooks with other nodes on the same database. */
export interface WebhookLeaseOptions {
  store: WebhookLeaseStore;
  /** This node's id: the owner its leases are written under. */
  owner: string;
  /** How long a lease lasts unless renewed (default 10 s); renewed every ttlMs / 3. */
  ttlMs?: number;
}

export interface WebhookLeasesDeps {
  clock: Clock;
  log: Logger;
  /** Run first in every round (the registry reads the configurations again); a rejection fails the round. */
  refresh: () => Promise<void>;
  /** The webhooks this node could drive now. */
  wanted: () => WebhookRef[];
  /** The set of webhooks this node drives changed (keys: webhookLeaseKey). */
  changed: (held: ReadonlySet<string>) => void;
}

/**
 * The webhook leases of one node: which webhooks it drives. Every ttlMs / 3 a round renews the leases it
 * holds and takes those nobody holds or whose lease ran out (a node that died: after its TTL), then tells
 * the registry which it holds. A lease is good until the round's start + ttlMs; should no round succeed
 * before the last one's start + 3/4 ttlMs (database down or hung), every webhook is let go, so this node
 * stops driving before another node can take its leases. Leases it holds but no longer wants (a webhook
 * deleted, a table gone) are released at once.
 *
 * One round runs at a time; renewNow() asks for one (after the one running, if any).
 */
export class WebhookLeases {
  readonly ttlMs: number;
  private readonly store: WebhookLeaseStore;
  private readonly owner: string;
  private held = new Set<string>();
  private timer: TimerHandle | undefined;
  /** Fires when the leases held are about to run out unrenewed. */
  private guard: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private outage = false;
  private closed = false;

  constructor(
    options: WebhookLeaseOptions,
    private readonly deps: WebhookLeasesDeps,
  ) {
    this.store = options.store;
    this.owner = options.owner;
    this.ttlMs = options.ttlMs ?? DEFAULT_WEBHOOK_LEASE_TTL_MS;
    if (!(this.ttlMs > 0)) throw new Error(`webhook lease ttlMs must be > 0, got ${this.ttlMs}`);
  }

  holds(table: string, name: string): boolean {
    return this.held.has(webhookLeaseKey(table, name));
  }

  /** A round now (or after the one running), and every ttlMs / 3 after it; resolves when it is done. */
  renewNow(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.queued) return this.queued;
    if (!this.running) return this.startRound();
    this.queued = this.running.then(() => {
      this.queued = undefined;
      return this.startRound();
    });
    return this.queued;
  }

  /** Gives up a webhook's lease (it was deleted here); a failure only leaves the lease to run out. */
  async release(table: string, name: string): Promise<void> {
    const key = webhookLeaseKey(table, name);
    if (!this.held.delete(key)) return;
    await this.releaseKeys([key]);
  }

  /** Starts no more rounds (the one running ends, and its leases are counted for close()). */
  stop(): void {
    this.closed = true;
    if (this.timer !== undefined) this.deps.clock.clearTimeout(this.timer);
    if (this.guard !== undefined) this.deps.clock.clearTimeout(this.guard);
    this.timer = this.guard = undefined;
  }

  /**
   * Stops renewing. With `release`, the leases held are given up once the round running ended, so other
   * nodes take the webhooks at once; without, they run out after the TTL (as when a node dies).
   */
  async close(release: boolean): Promise<void> {
    this.stop();
    await this.running;
    const keys = [...this.held];
    this.held.clear();
    if (release) await this.releaseKeys(keys);
  }

  private startRound(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.timer !== undefined) this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const round = this.round().finally(() => {
      if (this.running === round) this.running = undefined;
      this.schedule();
    });
    this.running = round;
    return round;
  }

  private schedule(): void {
    if (this.closed || this.timer !== undefined || this.queued) return;
    this.timer = this.deps.clock.setTimeout(() => {
      this.timer = undefined;
      void this.renewNow();
    }, this.ttlMs / 3);
  }

  /** Never rejects. */
  private async round(): Promise<void> {
    const { clock, log } = this.deps;
    const started = clock.now();
    let wanted: Set<string>;
    let result: Set<string>;
    try {
      await this.deps.refresh();
      const refs = this.deps.wanted();
      wanted = new Set(refs.map((w) => webhookLeaseKey(w.table, w.name)));
      result = await this.store.acquireWebhookLeases(this.owner, refs, started, this.ttlMs);
    } catch (err) {
      if (!this.outage) log.warn({ err, owner: this.owner }, "could not renew the webhook leases; retrying");
      this.outage = true;
      return;
    }
    if (this.closed) {
      this.held = result; // for close() to release
      return;
    }
    if (this.outage) log.info({ owner: this.owner }, "webhook leases are renewed again");
    this.outage = false;
    const deadline = started + this.ttlMs;
    if (clock.now() >= this.guardTime(deadline)) {
      log.warn({ owner: this.owner, tookMs: clock.now() - started }, "renewing the webhook leases took too long; not counting on them");
      return;
    }
    const held = new Set<string>();
    const stray: string[] = [];
    for (const key of result) {
      if (wanted.has(key)) held.add(key);
      else stray.push(key);
    }
    this.held = held;
    this.deps.changed(held); // every round: the registry also starts what it could not start before
    if (this.guard !== undefined) clock.clearTimeout(this.guard);
    this.guard = clock.setTimeout(() => this.expire(), this.guardTime(deadline) - clock.now());
    if (stray.length > 0) await this.releaseKeys(stray);
  }

  /** When to stop counting on leases good until `deadline`: a quarter TTL early. */
  private guardTime(deadline: number): number {
    return deadline - this.ttlMs / 4;
  }

  private expire(): void {
    this.guard = undefined;
    if (this.closed || this.held.size === 0) return;
    this.deps.log.warn(
      { owner: this.owner, count: this.held.size },
      "could not renew the webhook leases before they run out; no longer driving those webhooks",
    );
    this.held = new Set();
    this.deps.changed(this.held);
  }

  private async releaseKeys(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    try {
      await this.store.releaseWebhookLeases(this.owner, keys);
    } catch (err) {
      this.deps.log.debug({ err, owner: this.owner, count: keys.length }, "could not release webhook leases; they run out");
    }
  }
}
