/** A delivered message: its fields, and the ack, postpone, fail and extend it forwards to its subscription. */
import type { Outcome } from "./answered.js";
import { MAX_REASON_CHARS } from "../model/limits.js";
import { checkWhole, invalidArgument } from "./http.js";
import type { WireMessage } from "./types.js";

/** Options of `msg.ack()`. */
export interface AckOptions {
  /**
   * Send the ack at once and wait for the server's answer (`true` once the server committed it; `false` when
   * it did not: the message was delivered again since, when fenced, or was already acked or dead-lettered).
   * Default false: acks are batched per tick and not awaited.
   */
  confirm?: boolean;
}

/** A delivered message. `payload` is the parsed JSON value. */
export interface Message<T = unknown> {
  readonly id: string;
  readonly priority: number;
  /** Earlier deliveries of this message (0 on the first). */
  readonly epoch: number;
  /** Names this delivery (id and epoch); opaque. See `client.ackReceipts` and the `fenced` option. */
  readonly receipt: string;
  readonly payload: T;
  /** True once acked, postponed or failed through this object. */
  readonly settled: boolean;
  /** Acks it (batched per tick). A second ack, postpone or fail is ignored. */
  ack(): void;
  /** Acks it and waits for the server's answer; see AckOptions. */
  ack(options: AckOptions & { confirm: true }): Promise<boolean>;
  ack(options?: AckOptions): void | Promise<boolean>;
  /** Hands it back for redelivery after `delayMs`, or after the table's backoff when absent. */
  postpone(delayMs?: number): void;
  /**
   * Gives up on it for good: it moves to the table's dead letters at once, whatever attempts it has left
   * (BullMQ's UnrecoverableError, JetStream's term, AMQP's reject without requeue), with `reason` kept
   * beside it. Fenced by this delivery's receipt. Resolves true once moved; false when the message was
   * delivered again since, or was acked. Rejects with a TablemqError when the server cannot be reached.
   */
  fail(reason?: string): Promise<boolean>;
  /**
   * Hands it back unprocessed: due again at once, and this delivery does not count toward maxAttempts.
   * Fenced by the receipt: when the message was delivered again since (someone else has it now), nothing
   * changes. Resolves true once released; false when stale, acked, or settled through this object.
   */
  release(): Promise<boolean>;
  /**
   * Extends this delivery's lease: the message is not due again before `byMs` from now (never earlier than
   * it was). Resolves true when extended; false when the receipt is stale (the message was delivered again
   * since), when the message was acked, or when it was settled through this object. Rejects with a
   * TablemqError when the server cannot be reached or refuses the request.
   */
  extend(byMs: number): Promise<boolean>;
  toJSON(): WireMessage;
}

/** The subscription side of a message. */
export interface MessageOwner {
  ack(message: ReceivedMessage<unknown>): void;
  /** An ack sent at once, its answer awaited. */
  confirmAck(message: ReceivedMessage<unknown>): Promise<Outcome>;
  postpone(message: ReceivedMessage<unknown>, delayMs: number | undefined): void;
  fail(message: ReceivedMessage<unknown>, reason: string | undefined): Promise<Outcome>;
  release(message: ReceivedMessage<unknown>): Promise<Outcome>;
  extend(message: ReceivedMessage<unknown>, byMs: number): Promise<Outcome>;
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

  ack(): void;
  ack(options: AckOptions & { confirm: true }): Promise<boolean>;
  ack(options?: AckOptions): void | Promise<boolean>;
  ack(options?: AckOptions): void | Promise<boolean> {
    if (options?.confirm) {
      if (this.settled) return Promise.resolve(false);
      this.settled = true;
      return this.owner.confirmAck(this).then((outcome) => outcome === "done");
    }
    if (this.settled) return;
    this.settled = true;
    this.owner.ack(this);
  }

  async fail(reason?: string): Promise<boolean> {
    if (reason !== undefined && (typeof reason !== "string" || reason.length > MAX_REASON_CHARS)) {
      throw invalidArgument("reason", `must be a string of at most ${MAX_REASON_CHARS} characters`);
    }
    if (this.settled) return false;
    this.settled = true;
    return (await this.owner.fail(this, reason)) === "done";
  }

  async release(): Promise<boolean> {
    if (this.settled) return false;
    this.settled = true;
    return (await this.owner.release(this)) === "done";
  }

  postpone(delayMs?: number): void {
    checkWhole("delayMs", delayMs, 0, true);
    if (this.settled) return;
    this.settled = true;
    this.owner.postpone(this, delayMs);
  }

  async extend(byMs: number): Promise<boolean> {
    return (await this.extendLease(byMs)) === "done";
  }

  /** As `extend`, with the reason when it was not extended (the heartbeat needs it). */
  async extendLease(byMs: number): Promise<Outcome> {
    checkWhole("byMs", byMs ?? NaN, 1, true);
    if (this.settled) return "gone";
    return this.owner.extend(this, byMs);
  }

  toJSON(): WireMessage {
    return { id: this.id, priority: this.priority, epoch: this.epoch, receipt: this.receipt, payload: this.payload };
  }
}
