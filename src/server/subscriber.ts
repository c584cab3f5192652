import type { WebSocket } from "ws";
import type { Engine } from "../engine/engine.js";
import type { Logger } from "../logger.js";
import type { Subscription } from "../manager/manager.js";
import type { Receiver } from "../manager/receivers.js";
import type { MessageRow } from "../model/messages.js";
import { toApiError } from "./errors.js";
import type { Metrics } from "./metrics.js";
import { deliveredText } from "../receipts.js";
import type { ClientFrame, ServerFrame, ServerFrames } from "../wire.js";
import type { Static } from "typebox";
import { parseFrame } from "./frames.js";
import { answerOf, idsAndReceipts, runIdOrReceiptOp } from "./id-or-receipt-ops.js";

/** A frame answering a client's frame, before its `ref` is set. */
type ReplyFrame = WithoutRef<Static<(typeof ServerFrames)["acked" | "postponed" | "failed" | "extended" | "released" | "paused"]>>;
const REPLY_OF = { ack: "acked", postpone: "postponed", fail: "failed" } as const;
type WithoutRef<T> = T extends unknown ? Omit<T, "ref"> : never;

/** WebSocket close codes we use. */
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_POLICY = 1008;

/** Bytes a subscriber may leave unread in its socket's send buffer before it is cut off. */
export const MAX_BUFFERED = 4 * 1024 * 1024;

/** Bad frames tolerated before the socket is closed with 1008. */
export const MAX_VIOLATIONS = 10;

export interface SubscriberOptions {
  table: string;
  maxInFlight: number;
  maxBatch: number;
  /** The server's WebSocket ping period, told to the client in `subscribed`. */
  pingIntervalMs?: number;
  engine: Engine;
  metrics: Metrics;
  log: Logger;
  clock: () => number;
}

/**
 * One WebSocket subscriber: a Receiver for the table's manager, and the handler of the client's frames.
 *
 * `send` resolves once the frame is written to the socket, so a slow reader keeps its receiver busy (the
 * manager sends it nothing more) instead of making the server buffer without bound. The manager's
 * maxInFlight credit bounds what it holds unacked.
 */
export class SocketSubscriber implements Receiver {
  readonly maxInFlight: number;
  private subscription: Subscription | undefined;
  private violations = 0;
  private closed = false;
  /** The client asked for nothing more (a `pause` frame): it is closing. */
  private paused = false;

  constructor(
    private readonly socket: WebSocket,
    private readonly opts: SubscriberOptions,
  ) {
    this.maxInFlight = opts.maxInFlight;
  }

  /** Subscribes to the table and wires the socket's events. */
  async start(batchSize: number, ackWaitMs: number): Promise<void> {
    const { socket, opts } = this;
    socket.on("message", (data, isBinary) => void this.onFrame(data.toString(), isBinary));
    socket.on("close", () => this.stop());
    socket.on("error", (err) => {
      opts.log.debug({ err, table: opts.table }, "subscriber socket error");
      this.stop();
    });
    const ping = opts.pingIntervalMs === undefined ? {} : { pingIntervalMs: opts.pingIntervalMs };
    this.write({ type: "subscribed", table: opts.table, batchSize, ackWaitMs, maxInFlight: this.maxInFlight, ...ping });
    this.subscription = (await opts.engine.table(opts.table)).subscribe(this);
    if (this.closed || this.paused) this.subscription.unsubscribe(); // gone, or paused, while we subscribed
  }

  send(batch: MessageRow[]): Promise<void> {
    if (this.paused) return Promise.reject(new Error("subscriber paused")); // not a receiver any more
    if (this.closed || this.socket.readyState !== this.socket.OPEN) {
      this.stop(); // closing: stop being a receiver now, not when the close handshake ends
      return Promise.reject(new Error("socket closed"));
    }
    if (this.socket.bufferedAmount > MAX_BUFFERED) {
      // Batches given up on (the manager's send timeout) are still queued in the socket: cut it off.
      this.opts.log.warn({ table: this.opts.table }, "subscriber does not read its socket: terminating it");
      this.socket.terminate();
      this.stop();
      return Promise.reject(new Error("subscriber does not read"));
    }
    const now = this.opts.clock();
    for (const r of batch) this.opts.metrics.deliveryLagSeconds.observe({ table: this.opts.table }, Math.max(0, now - r.timeNext) / 1000);
    this.opts.metrics.batchSize.observe({ table: this.opts.table, kind: "delivery" }, batch.length);
    // Payloads are raw JSON text from the table: spliced in, not re-parsed.
    const items = batch.map(deliveredText);
    const frame = `{"type":"messages","messages":[${items.join(",")}]}`;
    return new Promise((resolve, reject) => this.socket.send(frame, (err) => (err ? reject(err) : resolve())));
  }

  onClose(reason: string): void {
    this.closed = true;
    this.socket.close(CLOSE_GOING_AWAY, reason.slice(0, 120));
  }

  private stop(): void {
    if (this.closed && !this.subscription) return;
    this.closed = true;
    this.subscription?.unsubscribe();
    this.subscription = undefined;
  }

  private async onFrame(text: string, isBinary: boolean): Promise<void> {
    const frame = isBinary ? undefined : parseFrame(text, this.opts.maxBatch);
    if (!frame || "error" in frame) {
      this.violation(frame?.error ?? "frames must be JSON text");
      return;
    }
    try {
      const reply = await this.apply(frame);
      if (frame.type !== "pause") this.opts.metrics.batchSize.observe({ table: this.opts.table, kind: frame.type }, idsAndReceipts(frame));
      if (frame.ref !== undefined) this.write({ ...reply, ref: frame.ref } as ServerFrame);
    } catch (err) {
      const e = toApiError(err);
      this.write({ type: "error", code: e.code, message: e.message, ...(frame.ref !== undefined ? { ref: frame.ref } : {}) });
    }
  }

  /** Carries out a client frame; returns the reply frame (sent when the client gave a `ref`). */
  private async apply(frame: ClientFrame): Promise<ReplyFrame> {
    if (frame.type === "pause") {
      // A closing client: nothing more is sent here; the socket stays open for its last frames.
      this.subscription?.unsubscribe();
      this.subscription = undefined;
      this.paused = true;
      return { type: "paused" };
    }
    const handle = await this.opts.engine.table(this.opts.table);
    if (frame.type === "release") {
      const { changed, stale } = await handle.releaseReceipts(frame.receipts);
      return { type: "released", released: changed, stale };
    }
    if (frame.type === "extend") {
      const { changed, stale, unchanged } = await handle.extend(frame.receipts ?? [], frame.byMs ?? 0);
      return { type: "extended", extended: changed, stale, ...(unchanged?.length ? { unchanged } : {}) };
    }
    const answer = answerOf(frame.type, await runIdOrReceiptOp(handle, frame.type, frame));
    return { type: REPLY_OF[frame.type], ...answer } as ReplyFrame;
  }

  private violation(message: string): void {
    this.violations++;
    this.write({ type: "error", code: "bad_request", message });
    if (this.violations >= MAX_VIOLATIONS) this.socket.close(CLOSE_POLICY, "too many bad frames");
  }

  /**
   * Replies (error, acked, postponed frames) are small, but a client that floods frames without reading
   * would make them pile up in the socket's buffer: past MAX_BUFFERED bytes it is cut off.
   */
  private write(frame: ServerFrame): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    if (this.socket.bufferedAmount > MAX_BUFFERED) {
      this.opts.log.warn({ table: this.opts.table }, "subscriber does not read its socket: terminating it");
      this.socket.terminate();
      return;
    }
    this.socket.send(JSON.stringify(frame));
  }
}
