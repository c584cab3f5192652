import type { Receiver } from "../../src/manager/receivers.js";
import type { MessageRow } from "../../src/store/types.js";

/** A receiver that records the batches it gets; sends can be made to hang or fail. */
export class RecordingReceiver implements Receiver {
  readonly batches: MessageRow[][] = [];
  closedWith: string | undefined;
  /** When set, each send waits for `release()`. */
  holdSends = false;
  failSends = false;
  private waiting: Array<() => void> = [];

  constructor(readonly maxInFlight = 0) {}

  get ids(): string[] {
    return this.batches.flat().map((r) => r.id);
  }

  async send(batch: MessageRow[]): Promise<void> {
    this.batches.push(batch);
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
