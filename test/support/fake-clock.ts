import type { Clock, TimerHandle } from "../../src/clock.js";

interface FakeTimer {
  at: number;
  seq: number;
  fn: () => void;
}

/** Manual time for the manager's tests: timers fire only inside `advance`. */
export class FakeClock implements Clock {
  private readonly timers = new Map<object, FakeTimer>();
  private seq = 0;

  constructor(private t = 1_700_000_000_000) {}

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle = {};
    this.timers.set(handle, { at: this.t + Math.max(0, ms), seq: this.seq++, fn });
    return handle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle);
  }

  get pendingTimers(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing due timers in order and letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    await settle();
    for (;;) {
      const next = this.nextDue(target);
      if (!next) break;
      const [handle, timer] = next;
      this.timers.delete(handle);
      this.t = Math.max(this.t, timer.at);
      timer.fn();
      await settle();
    }
    this.t = target;
    await settle();
  }

  private nextDue(limit: number): [object, FakeTimer] | undefined {
    let best: [object, FakeTimer] | undefined;
    for (const entry of this.timers) {
      const [, t] = entry;
      if (t.at > limit) continue;
      if (!best || t.at < best[1].at || (t.at === best[1].at && t.seq < best[1].seq)) best = entry;
    }
    return best;
  }
}

/** Lets pending promise chains run to completion (several macrotask turns). */
export async function settle(rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}
