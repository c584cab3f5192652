import type { Clock, TimerHandle } from "../clock.js";
import type { MessageRow } from "../model/messages.js";

/**
 * Timers for messages enqueued through this server with a delay that falls due before the next poll, so
 * they are delivered on time instead of at the next poll (Vitess leaves them to the poller). Bounded: past
 * `capacity` timers, the poller is left to find them.
 */
export class DelayedArrivals {
  private readonly timers = new Map<string, { timer: TimerHandle; at: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly capacity: () => number,
    private readonly onDue: (row: MessageRow) => void,
  ) {}

  get size(): number {
    return this.timers.size;
  }

  /** Schedules `row` if it falls due before `nextPollAt`; returns whether a timer was set. */
  schedule(row: MessageRow, nextPollAt: number): boolean {
    if (row.timeNext >= nextPollAt || this.timers.has(row.id) || this.timers.size >= this.capacity()) return false;
    const timer = this.clock.setTimeout(() => {
      this.timers.delete(row.id);
      this.onDue(row);
    }, row.timeNext - this.clock.now());
    this.timers.set(row.id, { timer, at: row.timeNext });
    return true;
  }

  cancel(ids: Iterable<string>): void {
    for (const id of ids) {
      const t = this.timers.get(id);
      if (t === undefined) continue;
      this.clock.clearTimeout(t.timer);
      this.timers.delete(id);
    }
  }

  /** Drops every timer; returns the due times of their rows. */
  clear(): number[] {
    for (const { timer } of this.timers.values()) this.clock.clearTimeout(timer);
    const times = [...this.timers.values()].map((t) => t.at);
    this.timers.clear();
    return times;
  }
}
