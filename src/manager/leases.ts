import type { ReceiverSlot } from "./receivers.js";

/**
 * The maxInFlight credit: which receivers were sent which messages that nobody has acked or rescheduled
 * yet. A receiver's credit comes back only when those messages are acked or postponed (by anyone, over any
 * path) or when it goes away. Not when the ack wait runs out: a subscriber that stops acking must stop
 * receiving, while its messages are redelivered to others after the ack wait (and once those acks arrive,
 * it gets its credit back). Receivers without a maxInFlight are not tracked, so this stays bounded by
 * the sum of the receivers' maxInFlight.
 */
export class Leases {
  private readonly holders = new Map<string, Set<ReceiverSlot>>();

  constructor(private readonly onRelease: (slot: ReceiverSlot) => void) {}

  /** Messages with at least one holder. */
  get size(): number {
    return this.holders.size;
  }

  /** True when `slot` was sent `id` and nobody has acked or rescheduled it since. */
  holds(slot: ReceiverSlot, id: string): boolean {
    return this.holders.get(id)?.has(slot) ?? false;
  }

  grant(slot: ReceiverSlot, ids: readonly string[]): void {
    if (slot.maxInFlight <= 0) return;
    for (const id of ids) {
      let set = this.holders.get(id);
      if (!set) this.holders.set(id, (set = new Set()));
      if (set.has(slot)) continue;
      set.add(slot);
      slot.held++;
    }
  }

  /** Ends every lease on ids (or only `onlyBy`'s) and wakes the receivers that got credit back. */
  release(ids: Iterable<string>, onlyBy?: ReceiverSlot): void {
    const touched = new Set<ReceiverSlot>();
    for (const id of ids) {
      const set = this.holders.get(id);
      if (!set) continue;
      for (const slot of [...set]) {
        if (onlyBy && slot !== onlyBy) continue;
        set.delete(slot);
        slot.held = Math.max(0, slot.held - 1);
        touched.add(slot);
      }
      if (set.size === 0) this.holders.delete(id);
    }
    for (const slot of touched) if (!slot.removed) this.onRelease(slot);
  }

  /** Forgets every lease of a receiver that went away. */
  dropSlot(slot: ReceiverSlot): void {
    for (const [id, set] of this.holders) {
      if (set.delete(slot) && set.size === 0) this.holders.delete(id);
    }
    slot.held = 0;
  }

  clear(): void {
    for (const set of this.holders.values()) for (const slot of set) slot.held = 0;
    this.holders.clear();
  }
}
