import type { Clock, TimerHandle } from "../clock.js";
import type { MessageRow } from "../model/messages.js";

/** How long a row written held (InsertPath.holdForInsert) is passed by by other nodes' polls. */
export const HOLD_MS = 1_000;

/** Held rows whose hold ended are looked for at most this often. */
const CHECK_SPACING_MS = 100;

/**
 * Watches the holds of rows queued in this node's cache (InsertPath.holdForInsert). A held row still queued
 * here when its hold ends is due for every node, but nobody told them: it was held so they would not look.
 * So when a hold ends with its rows still waiting (this node's receivers were slower than they had credit
 * for), the other nodes are told (`signal`), and their starved receivers take them. One timer at a time, for
 * the earliest hold; looks at most every CHECK_SPACING_MS.
 */
export class HoldWatch {
  private timer: TimerHandle | undefined;
  private at = Infinity;

  constructor(
    private readonly clock: Clock,
    private readonly queued: () => Iterable<MessageRow>,
    private readonly signal: () => void,
  ) {}

  /** Rows held until `at` went into the cache. */
  watch(at: number): void {
    if (at >= this.at) return; // the earlier check looks for this one too
    this.stop();
    this.at = at;
    this.timer = this.clock.setTimeout(() => this.check(), at - this.clock.now());
  }

  stop(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.at = Infinity;
  }

  private check(): void {
    this.timer = undefined;
    this.at = Infinity;
    const now = this.clock.now();
    let ended = false;
    let next = Infinity;
    for (const row of this.queued()) {
      if (row.heldUntil === undefined) continue;
      if (row.heldUntil <= now) ended = true;
      else next = Math.min(next, row.heldUntil);
    }
    if (ended) this.signal();
    if (next !== Infinity) this.watch(Math.max(next, now + CHECK_SPACING_MS));
  }
}
