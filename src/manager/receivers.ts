import type { MessageRow } from "../model/messages.js";

/**
 * What the manager sends batches to: a WebSocket subscriber, a test double, later a webhook.
 * `send` resolves when the batch has been handed over (written to the socket); a rejection counts as a
 * failed send, and the batch is postponed all the same.
 */
export interface Receiver {
  send(batch: MessageRow[]): Promise<void>;
  /** Most unacked messages this receiver may hold at once; 0 or absent = no limit. */
  readonly maxInFlight?: number;
  /** Told when the manager ends the subscription (table dropped, engine closed). */
  onClose?(reason: string): void;
}

/**
 * A receiver plus the state the manager keeps for it. `sending` covers the send and the postpone of a
 * batch (Vitess's busy flag); `held` counts the messages it was sent and has not acked, rescheduled or
 * timed out on yet (our maxInFlight credit).
 */
export class ReceiverSlot {
  sending = false;
  held = 0;
  private readonly gone = new AbortController();

  constructor(readonly receiver: Receiver) {}

  get removed(): boolean {
    return this.gone.signal.aborted;
  }

  get maxInFlight(): number {
    return this.receiver.maxInFlight ?? 0;
  }

  /** False while it holds maxInFlight unacked messages. */
  get hasCredit(): boolean {
    return this.maxInFlight <= 0 || this.held < this.maxInFlight;
  }

  get busy(): boolean {
    return this.sending || !this.hasCredit;
  }

  /**
   * Sends a batch; rejects as soon as the slot is removed or a `cancel` signal aborts, so a send stuck on
   * a departed receiver, a closing manager or a reader that stopped reading is abandoned, not waited for.
   */
  send(batch: MessageRow[], ...cancel: AbortSignal[]): Promise<void> {
    return untilAborted(this.receiver.send(batch), [this.gone.signal, ...cancel]);
  }

  remove(): void {
    this.gone.abort(new Error("receiver went away"));
  }
}

/**
 * The receivers of one table in subscription order, with a round-robin cursor: each pick starts after the
 * receiver picked last and returns the first one that is not busy.
 */
export class ReceiverSet {
  private slots: ReceiverSlot[] = [];
  private cursor = -1;

  get count(): number {
    return this.slots.length;
  }

  /** Messages the receivers can take before they run out of credit (Infinity if one has no maxInFlight). */
  freeCredit(): number {
    let free = 0;
    for (const slot of this.slots) free += slot.maxInFlight <= 0 ? Infinity : Math.max(0, slot.maxInFlight - slot.held);
    return free;
  }

  /** The sum of the receivers' maxInFlight (Infinity when one has none). */
  totalCredit(): number {
    let total = 0;
    for (const slot of this.slots) total += slot.maxInFlight <= 0 ? Infinity : slot.maxInFlight;
    return total;
  }

  all(): readonly ReceiverSlot[] {
    return this.slots;
  }

  add(receiver: Receiver): ReceiverSlot {
    const slot = new ReceiverSlot(receiver);
    this.slots.push(slot);
    return slot;
  }

  /** Removes a slot; returns false if it was not there. */
  remove(slot: ReceiverSlot): boolean {
    const i = this.slots.indexOf(slot);
    if (i < 0) return false;
    this.slots.splice(i, 1);
    if (i <= this.cursor) this.cursor--;
    slot.remove();
    return true;
  }

  /** Removes every slot and returns them. */
  clear(): ReceiverSlot[] {
    const removed = this.slots;
    this.slots = [];
    this.cursor = -1;
    for (const slot of removed) slot.remove();
    return removed;
  }

  /** The next idle receiver in round-robin order, or undefined if all are busy. */
  nextIdle(): ReceiverSlot | undefined {
    const n = this.slots.length;
    for (let k = 1; k <= n; k++) {
      const i = (this.cursor + k) % n;
      const slot = this.slots[i]!;
      if (!slot.busy) {
        this.cursor = i;
        return slot;
      }
    }
    return undefined;
  }
}

function untilAborted<T>(work: Promise<T>, signals: AbortSignal[]): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      cleanup();
      reject(new Error("send abandoned: receiver gone or manager closed"));
    };
    const cleanup = (): void => {
      for (const s of signals) s.removeEventListener("abort", onAbort);
    };
    if (signals.some((s) => s.aborted)) {
      work.catch(() => {}); // abandoned: its outcome no longer matters, but must not go unhandled
      return onAbort();
    }
    for (const s of signals) s.addEventListener("abort", onAbort, { once: true });
    work.then(
      (v) => {
        cleanup();
        resolve(v);
      },
      (err: unknown) => {
        cleanup();
        reject(err);
      },
    );
  });
}
