import type { Clock, TimerHandle } from "../clock.js";

/** When a failed destination is tried again: `minDelayMs`, doubling per failure, at most `maxDelayMs`. */
export interface RetryPolicy {
  minDelayMs: number;
  maxDelayMs: number;
}

/** 1 s, 2 s, 4 s ... 512 s (Synapse's appservice recoverer caps at 2^9 s too). */
export const DEFAULT_RETRY: Readonly<RetryPolicy> = Object.freeze({ minDelayMs: 1_000, maxDelayMs: 512_000 });

/** The wait before the next try after `failures` consecutive failures (1 = the first). */
export function retryDelayMs(policy: RetryPolicy, failures: number): number {
  const doublings = Math.min(Math.max(0, failures - 1), 52); // 2^52 keeps the product finite and exact
  return Math.min(policy.maxDelayMs, policy.minDelayMs * 2 ** doublings);
}

/**
 * The recoverer of one webhook destination (Synapse's _Recoverer): after each failure it waits the
 * backoff for the failures so far and calls `retry`; a success resets the count. At most one retry is
 * scheduled at a time. Time comes from the injected clock, so tests drive it with fake time.
 */
export class Recoverer {
  private failureCount = 0;
  private timer: TimerHandle | undefined;
  private retryAt: number | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly policy: () => RetryPolicy,
    private readonly retry: () => void,
  ) {}

  /** Consecutive failures since the last success. */
  get failures(): number {
    return this.failureCount;
  }

  /** When the scheduled retry runs (epoch ms), or undefined when none is. */
  get nextRetryAt(): number | undefined {
    return this.retryAt;
  }

  get scheduled(): boolean {
    return this.timer !== undefined;
  }

  /** Counts a failure and schedules the retry; returns its delay. */
  failed(): number {
    this.failureCount++;
    const delay = retryDelayMs(this.policy(), this.failureCount);
    this.cancel();
    this.retryAt = this.clock.now() + delay;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.retryAt = undefined;
      this.retry();
    }, delay);
    return delay;
  }

  /** A success: the next failure waits the shortest delay again. */
  succeeded(): void {
    this.failureCount = 0;
  }

  cancel(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.retryAt = undefined;
  }
}
