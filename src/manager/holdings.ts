import type { ReceiverSlot } from "./receivers.js";

/**
 * What each receiver holds, for the maxInFlight credit. Words used across the manager: a receiver *holds* a
 * message it was sent that nobody has acked or rescheduled yet; its *credit* is its maxInFlight less what it
 * holds; a message is *sending* from its pop out of the cache until its delivery is recorded (cache.ts); a
 * *lease* is the time a delivered message is not due again in its table (ack wait plus backoff; `extend`
 * lengthens it); the API's `inFlight` counts the table's delivered rows whose lease has not run out.
 *
 * Which receivers were sent which messages that nobody has acked or rescheduled yet. A receiver's credit comes back only when those messages are acked or postponed (by anyone, over any
 * path) or when it goes away. Not when the ack wait runs out: a subscriber that stops acking must stop
 * receiving, while its messages are redelivered to others after the ack wait (and once those acks arrive,
 * it gets its credit back). Receivers without a maxInFlight are not tracked, so this stays bounded by
 * the sum of the receivers' maxInFlight.
 */
export class Holdings {
  /**
   * Each held message's holders: the receiver it was sent to, or (sent again to another before anyone
   * acked it) the set of them. One receiver is the rule, and it costs no Set per message.
   */
  private readonly holders = new Map<string, ReceiverSlot | Set<ReceiverSlot>>();

  constructor(private readonly onRelease: (slot: ReceiverSlot) => void) {}

  /** Messages with at least one holder. */
  get size(): number {
    return this.holders.size;
  }

  /** True when `slot` was sent `id` and nobody has acked or rescheduled it since. */
  holds(slot: ReceiverSlot, id: string): boolean {
    const held = this.holders.get(id);
    return held === slot || (held instanceof Set && held.has(slot));
  }

  hold(slot: ReceiverSlot, ids: readonly string[]): void {
    if (slot.maxInFlight <= 0) return;
    for (const id of ids) {
      const held = this.holders.get(id);
      if (held === undefined) this.holders.set(id, slot);
      else if (held === slot) continue;
      else if (held instanceof Set) {
        if (held.has(slot)) continue;
        held.add(slot);
      } else this.holders.set(id, new Set([held, slot]));
      slot.held++;
    }
  }

  /** Ends every hold on ids (or only `onlyBy`'s) and wakes the receivers that got credit back. */
  release(ids: Iterable<string>, onlyBy?: ReceiverSlot): void {
    const touched = new Set<ReceiverSlot>();
    const end = (slot: ReceiverSlot) => {
      slot.held = Math.max(0, slot.held - 1);
      touched.add(slot);
    };
    for (const id of ids) {
      const held = this.holders.get(id);
      if (held === undefined) continue;
      if (held instanceof Set) {
        for (const slot of held) {
          if (onlyBy && slot !== onlyBy) continue;
          held.delete(slot); // deleting the entry a for-of is on is safe for a Set
          end(slot);
        }
        if (held.size === 0) this.holders.delete(id);
      } else if (!onlyBy || held === onlyBy) {
        this.holders.delete(id);
        end(held);
      }
    }
    for (const slot of touched) if (!slot.removed) this.onRelease(slot);
  }

  /** Ends every hold (the messages are gone), as `release` of every held id. */
  releaseAll(): void {
    this.release([...this.holders.keys()]);
  }

  /** Forgets everything a receiver that went away held. */
  forgetReceiver(slot: ReceiverSlot): void {
    for (const [id, held] of this.holders) {
      if (held === slot || (held instanceof Set && held.delete(slot) && held.size === 0)) this.holders.delete(id);
    }
    slot.held = 0;
  }

  clear(): void {
    for (const held of this.holders.values()) {
      if (held instanceof Set) for (const slot of held) slot.held = 0;
      else held.held = 0;
    }
    this.holders.clear();
  }
}
