/**
 * Write coalescing (README "How it works"): concurrent requests join the
 * open batch, and a batch goes to the database as one statement as soon as a writer is free, so a lone
 * request is written at once and, under load, many requests share a statement (and its fsync). A batch
 * holds at most `maxItems`; at most `concurrency` statements run at once; items waiting are bounded by
 * `maxQueued`, past which a request is refused with OverloadedError (the server answers 429), never
 * dropped. A request that is still waiting for a writer after `maxWait.ms` (the writers are stuck on a
 * database that does not answer) is refused with `maxWait.error()`: it was never sent. Each request's
 * promise settles after the statement holding its items committed (or failed: then every request in that
 * statement gets the error, which says whether anything of it can have been written), except when the
 * database refused one request's data: that request alone fails (writeRequests).
 */
import type { Clock, TimerHandle } from "./clock.js";
import { OverloadedError, RejectedWriteError } from "./errors.js";

export interface CoalescerOptions<I, R> {
  maxItems: number;
  /**
   * Bound on a batch's total weight (e.g. payload bytes: a statement of 1,000 rows of 100 KiB would be
   * hundreds of MB of SQL text). A lone request is written whatever it weighs. None when absent.
   */
  maxWeight?: { of: (item: I) => number; max: number };
  maxQueued: number;
  concurrency: number;
  /** Writes the items in one statement; returns one result per item, in order. */
  write(items: I[]): Promise<R[]>;
  /** Bound on the wait for a writer; none when absent. */
  maxWait?: { ms: number; clock: Clock; error(): Error };
}

interface Request<I, R> {
  items: I[];
  weight: number;
  queuedAt: number;
  resolve(results: R[]): void;
  reject(err: unknown): void;
}

export class Coalescer<I, R> {
  private queue: Array<Request<I, R>> = [];
  private queuedItems = 0;
  private writing = 0;
  private scheduled = false;
  private idle: Array<() => void> = [];
  private expiry: TimerHandle | undefined;

  constructor(private readonly opts: CoalescerOptions<I, R>) {}

  get pending(): number {
    return this.queuedItems;
  }

  submit(items: I[]): Promise<R[]> {
    if (this.queuedItems + items.length > this.opts.maxQueued) {
      return Promise.reject(new OverloadedError(`${this.queuedItems} writes are already waiting for the database; retry later`));
    }
    const weigh = this.opts.maxWeight?.of;
    let weight = 0;
    if (weigh) for (const item of items) weight += weigh(item);
    return new Promise<R[]>((resolve, reject) => {
      this.queue.push({ items, weight, queuedAt: this.opts.maxWait?.clock.now() ?? 0, resolve, reject });
      this.queuedItems += items.length;
      this.armExpiry();
      if (this.scheduled) return;
      this.scheduled = true;
      // A microtask: requests arriving in the same tick go into one statement.
      queueMicrotask(() => {
        this.scheduled = false;
        this.pump();
      });
    });
  }

  /** Resolves once nothing is queued or being written. */
  drained(): Promise<void> {
    if (this.queue.length === 0 && this.writing === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private pump(): void {
    while (this.writing < this.opts.concurrency && this.queue.length > 0) {
      const batch: Array<Request<I, R>> = [];
      let size = 0;
      let weight = 0;
      const maxWeight = this.opts.maxWeight?.max ?? Infinity;
      while (
        this.queue.length > 0 &&
        (batch.length === 0 || (size + this.queue[0]!.items.length <= this.opts.maxItems && weight + this.queue[0]!.weight <= maxWeight))
      ) {
        const request = this.queue.shift()!;
        batch.push(request);
        size += request.items.length;
        weight += request.weight;
      }
      this.queuedItems -= size;
      this.writing++;
      void this.writeBatch(batch);
    }
    this.notifyIdle();
  }

  private notifyIdle(): void {
    if (this.queue.length === 0 && this.writing === 0) for (const f of this.idle.splice(0)) f();
  }

  /** One timer, for the oldest waiting request (the queue is in arrival order). */
  private armExpiry(): void {
    const wait = this.opts.maxWait;
    if (!wait || this.expiry !== undefined || this.queue.length === 0) return;
    const left = this.queue[0]!.queuedAt + wait.ms - wait.clock.now();
    this.expiry = wait.clock.setTimeout(() => {
      this.expiry = undefined;
      this.refuseExpired();
      this.armExpiry();
    }, left);
  }

  private refuseExpired(): void {
    const wait = this.opts.maxWait!;
    const now = wait.clock.now();
    while (this.queue.length > 0 && this.queue[0]!.queuedAt + wait.ms <= now) {
      const request = this.queue.shift()!;
      this.queuedItems -= request.items.length;
      request.reject(wait.error());
    }
    this.notifyIdle();
  }

  private async writeBatch(batch: Array<Request<I, R>>): Promise<void> {
    try {
      await this.writeRequests(batch);
    } finally {
      this.writing--;
      this.pump();
    }
  }

  /**
   * Writes requests in one statement and settles them. When the database refused a row of it
   * (RejectedWriteError: nothing of it was written), one request's data must not fail the others: the
   * requests are split in halves, written one half after the other (in order), until the request that holds
   * the row fails alone. n requests with one bad row cost about 2·log2(n) statements more.
   */
  private async writeRequests(batch: Array<Request<I, R>>): Promise<void> {
    try {
      const results = await this.opts.write(batch.flatMap((r) => r.items));
      let at = 0;
      for (const request of batch) {
        request.resolve(results.slice(at, at + request.items.length));
        at += request.items.length;
      }
    } catch (err) {
      if (batch.length > 1 && err instanceof RejectedWriteError) {
        const half = batch.length >> 1;
        await this.writeRequests(batch.slice(0, half));
        await this.writeRequests(batch.slice(half));
        return;
      }
      for (const request of batch) request.reject(err);
    }
  }
}
