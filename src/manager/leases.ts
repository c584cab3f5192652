import type { Clock, TimerHandle } from "../clock.js";
import type { ReceiverSlot } from "./receivers.js";

/**
 * Which receiver holds which delivered, unacked message: the maxInFlight credit. A lease ends when the
 * message is acked or rescheduled (by any path), when the ack wait runs out (the message will go to
 * someone else), when it is delivered again, or when its receiver goes away. Ending a lease calls
 * `onRelease` so the send loop can wake a receiver that was waiting for credit.
 */
export class Leases {
  private readonly holder = new Map<string, ReceiverSlot>();
  private readonly timers = new Set<TimerHandle>();

  constructor(
    private readonly clock: Clock,
    private readonly onRelease: (slot: ReceiverSlot) => void,
  ) {}

  get size(): number {
    return this.holder.size;
  }

  /** Records that `slot` was sent `ids`; the leases end by themselves after `ttlMs`. */
  grant(slot: ReceiverSlot, ids: readonly string[], ttlMs: number): void {
    for (const id of ids) {
      this.releaseOne(id, false);
      this.holder.set(id, slot);
      slot.held++;
    }
    const timer = this.clock.setTimeout(() => {
      this.timers.delete(timer);
      this.release(ids, slot);
    }, ttlMs);
    this.timers.add(timer);
  }

  /** Ends the leases of ids (only those held by `onlyBy`, when given). */
  release(ids: Iterable<string>, onlyBy?: ReceiverSlot): void {
    const touched = new Set<ReceiverSlot>();
    for (const id of ids) {
      const slot = this.holder.get(id);
      if (!slot || (onlyBy && slot !== onlyBy)) continue;
      this.releaseOne(id, false);
      touched.add(slot);
    }
    for (const slot of touched) if (!slot.removed) this.onRelease(slot);
  }

  /** Forgets every lease of a slot that went away. */
  dropSlot(slot: ReceiverSlot): void {
    for (const [id, s] of this.holder) if (s === slot) this.holder.delete(id);
    slot.held = 0;
  }

  clear(): void {
    for (const t of this.timers) this.clock.clearTimeout(t);
    this.timers.clear();
    for (const slot of this.holder.values()) slot.held = 0;
    this.holder.clear();
  }

  private releaseOne(id: string, notify: boolean): void {
    const slot = this.holder.get(id);
    if (!slot) return;
    this.holder.delete(id);
    slot.held = Math.max(0, slot.held - 1);
    if (notify && !slot.removed) this.onRelease(slot);
  }
}
