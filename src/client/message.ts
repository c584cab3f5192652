/** A delivered message: its fields, and the ack, postpone and extend it forwards to its subscription. */
import { checkWhole } from "./http.js";
import type { WireMessage } from "./types.js";

/** A delivered message. `payload` is the parsed JSON value. */
export interface Message<T = unknown> {
  readonly id: string;
  readonly priority: number;
  /** Earlier deliveries of this message (0 on the first). */
  readonly epoch: number;
  /** Names this delivery (id and epoch); opaque. See `client.ackReceipts` and the `fenced` option. */
  readonly receipt: string;
  readonly payload: T;
  /** True once acked or postponed through this object. */
  readonly settled: boolean;
  /** Acks it (batched per tick). A second ack or postpone is ignored. */
  ack(): void;
  /** Hands it back for redelivery after `delayMs`, or after the table's backoff when absent. */
  postpone(delayMs?: number): void;
  /**
   * Extends this delivery's lease: the message is not due again before `byMs` from now (never earlier than
   * it was). Resolves true when extended; false when the receipt is stale (the message was delivered again
   * since), when the message was acked, or when it was settled through this object. Rejects with a
   * TablemqError when the server cannot be reached or refuses the request.
   */
  extend(byMs: number): Promise<boolean>;
  toJSON(): WireMessage;
}

/** What a lease extension found: extended, a stale receipt, or a message acked (or unknown). */
export type ExtendOutcome = "extended" | "stale" | "gone";

/** The subscription side of a message. */
export interface MessageOwner {
  ack(message: ReceivedMessage<unknown>): void;
  postpone(message: ReceivedMessage<unknown>, delayMs: number | undefined): void;
  extend(message: ReceivedMessage<unknown>, byMs: number): Promise<ExtendOutcome>;
}

export class ReceivedMessage<T> implements Message<T> {
  readonly id: string;
  readonly priority: number;
  readonly epoch: number;
  readonly receipt: string;
  readonly payload: T;
  settled = false;
  /** When it arrived (Date.now()): its lease started about then. */
  readonly receivedAt = Date.now();

  constructor(
    wire: WireMessage,
    /** The connection that delivered it. */
    readonly generation: number,
    private readonly owner: MessageOwner,
  ) {
    this.id = wire.id;
    this.priority = wire.priority;
    this.epoch = wire.epoch;
    this.receipt = wire.receipt;
    this.payload = wire.payload as T;
  }

  ack(): void {
    if (this.settled) return;
    this.settled = true;
    this.owner.ack(this);
  }

  postpone(delayMs?: number): void {
    checkWhole("delayMs", delayMs, 0, true);
    if (this.settled) return;
    this.settled = true;
    this.owner.postpone(this, delayMs);
  }

  async extend(byMs: number): Promise<boolean> {
    return (await this.extendLease(byMs)) === "extended";
  }

  /** As `extend`, with the reason when it was not extended (the heartbeat needs it). */
  async extendLease(byMs: number): Promise<ExtendOutcome> {
    checkWhole("byMs", byMs ?? NaN, 1, true);
    if (this.settled) return "gone";
    return this.owner.extend(this, byMs);
  }

  toJSON(): WireMessage {
    return { id: this.id, priority: this.priority, epoch: this.epoch, receipt: this.receipt, payload: this.payload };
  }
}
