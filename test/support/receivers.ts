import type { Receiver } from "../../src/manager/receivers.js";
import type { MessageRow } from "../../src/model/messages.js";

/** A receiver that records the batches it gets; sends can be made to hang or fail. */
export class RecordingReceiver implements Receiver {
  readonly batches: MessageRow[][] = [];
  closedWith: string | undefined;
  /** When set, each send waits for `release()`. */
  holdSends = false;
  failSends = false;
  private waiting: Array<() => void> = [];

  constructor(readonly maxInFlight = 0) {}

  /** When each message arrived (Date.now()), in arrival order. */
  readonly arrivals: Array<{ id: string; epoch: number; at: number }> = [];
  /** Called with each batch as it arrives (e.g. to ack). */
  onBatch: ((batch: MessageRow[]) => void) | undefined;

  get ids(): string[] {
    return this.batches.flat().map((r) => r.id);
  }

  async send(batch: MessageRow[]): Promise<void> {
    this.batches.push(batch);
    const at = Date.now();
    for (const r of batch) this.arrivals.push({ id: r.id, epoch: r.epoch, at });
    this.onBatch?.(batch);
    if (this.holdSends) await new Promise<void>((r) => this.waiting.push(r));
    if (this.failSends) throw new Error("receiver failed");
  }

  /** Lets every held send finish. */
  release(): void {
    const w = this.waiting;
    this.waiting = [];
    for (const r of w) r();
  }

  onClose(reason: string): void {
    this.closedWith = reason;
  }
}
