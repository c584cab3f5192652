/**
 * A worker: a subscription in callback mode with the policies a job runner needs (README, "Workers").
 *
 *   const worker = client.work<Order>("orders", async (msg, { signal }) => ship(msg.payload, signal), {
 *     concurrency: 4,
 *     retry: (epoch) => Math.min(60_000, 1_000 * 2 ** epoch),
 *   });
 *   await worker.done();
 *
 * - A handler that resolves acks its message (unless it settled it itself).
 * - One that throws `Unrecoverable` fails its message: dead-lettered at once with the error's message as
 *   reason, whatever attempts are left.
 * - One that throws anything else postpones it: due again after `retry(epoch, error)` ms, or the table's
 *   backoff when `retry` is absent or returns undefined; the error is reported (onError / "error").
 * - Leases are extended while a handler runs (`autoExtend`, on by default), so a handler may run longer than
 *   the table's ack wait.
 * - A handler's `signal` aborts when its message is no longer its own (a lease extension found it delivered
 *   again), or when `close({ timeoutMs })` gives up waiting for it. A handler that fails after its signal
 *   aborted releases its message (`msg.release()`: due at once, the delivery uncounted; no retry policy, no
 *   error reported).
 * - `options.signal` closes the worker when it aborts.
 */
import { MAX_REASON_CHARS } from "../model/limits.js";
import { checkWhole, invalidArgument } from "./http.js";
import type { Message } from "./message.js";
import type { AutoExtendOptions, CloseOptions, SubscribeOptions, Subscription } from "./subscription.js";

/** How long close({ timeoutMs }) waits, after aborting the handlers still running, for them to release their messages. */
const ABORT_GRACE_MS = 5_000;

/** Thrown by a handler: the message can never succeed, so it is dead-lettered at once instead of retried. */
export class Unrecoverable extends Error {
  constructor(reason: string, options?: { cause?: unknown }) {
    super(reason, options);
    this.name = "Unrecoverable";
  }
}

export interface HandlerContext {
  /** Aborts when the message is no longer this handler's, or when close() stops waiting for it. */
  signal: AbortSignal;
}

export type Handler<T> = (message: Message<T>, context: HandlerContext) => void | Promise<void>;

export interface WorkOptions extends Pick<SubscribeOptions, "reconnect" | "heartbeatTimeoutMs" | "onError" | "fenced"> {
  /** Handlers running at once; default 1. */
  concurrency?: number;
  /**
   * Unacked messages the server may hand this worker (its maxInFlight): the running ones and those waiting
   * for a free handler. Default twice `concurrency`; at least `concurrency`.
   */
  prefetch?: number;
  /** Extend leases while handlers run (default true); see SubscribeOptions.autoExtend. */
  autoExtend?: boolean | AutoExtendOptions;
  /**
   * How long a message whose handler threw waits before it is due again, from its epoch (deliveries before
   * this one: 0 on the first) and the error. undefined: the table's backoff.
   */
  retry?: (epoch: number, error: Error) => number | undefined;
  /** Closes the worker when it aborts. */
  signal?: AbortSignal;
}

export class Worker<T = unknown> {
  /** The subscription under the worker: its events ("error", "stale", "reconnecting"...) and state. */
  readonly subscription: Subscription<T>;
  /** The handlers running now, by their message's receipt. */
  private readonly running = new Map<string, AbortController>();
  private closing: Promise<void> | undefined;

  constructor(subscribe: (options: SubscribeOptions<T>) => Subscription<T>, handler: Handler<T>, options: WorkOptions = {}) {
    if (typeof handler !== "function") throw invalidArgument("handler", "must be a function");
    checkWhole("concurrency", options.concurrency, 1);
    checkWhole("prefetch", options.prefetch, 1);
    if (options.retry !== undefined && typeof options.retry !== "function") throw invalidArgument("retry", "must be a function");
    const concurrency = options.concurrency ?? 1;
    const prefetch = options.prefetch ?? 2 * concurrency;
    if (prefetch < concurrency) throw invalidArgument("prefetch", `(${prefetch}) must be at least concurrency (${concurrency})`);
    const { retry, signal, concurrency: _c, prefetch: _p, autoExtend, ...rest } = options;
    this.subscription = subscribe({
      ...rest,
      concurrency,
      maxInFlight: prefetch,
      autoExtend: autoExtend ?? true,
      onMessage: (msg) => this.run(handler, msg, retry),
    });
    // A heartbeat that finds the message delivered again: the handler is working for nothing.
    this.subscription.on("stale", (info) => {
      if (info.kind !== "extend") return;
      for (const receipt of info.receipts) this.running.get(receipt)?.abort(new Error("the message was delivered again"));
    });
    if (signal) {
      if (signal.aborted) void this.close();
      else signal.addEventListener("abort", () => void this.close(), { once: true });
    }
  }

  /** Handlers running now. */
  get busy(): number {
    return this.running.size;
  }

  /** Resolves when the worker ends through close(); rejects with the error of a permanent failure. */
  done(): Promise<void> {
    return this.subscription.done();
  }

  /**
   * Stops taking messages, hands back those not started, and waits for running handlers (their acks are
   * sent). With `timeoutMs`, handlers still running then have their signal aborted, and are waited for at
   * most ABORT_GRACE_MS more (time to release their messages); later they are not waited for.
   */
  close(options: CloseOptions = {}): Promise<void> {
    this.closing ??= (async () => {
      checkWhole("timeoutMs", options.timeoutMs, 0, true);
      let timer: NodeJS.Timeout | undefined;
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(() => {
          for (const abort of this.running.values()) abort.abort(new Error("the worker closed"));
        }, options.timeoutMs);
      }
      try {
        const timeoutMs = options.timeoutMs === undefined ? undefined : options.timeoutMs + ABORT_GRACE_MS;
        await this.subscription.close({ ...options, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
      } finally {
        clearTimeout(timer);
      }
    })();
    return this.closing;
  }

  private async run(handler: Handler<T>, msg: Message<T>, retry: WorkOptions["retry"]): Promise<void> {
    const abort = new AbortController();
    this.running.set(msg.receipt, abort);
    try {
      await handler(msg, { signal: abort.signal });
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      if (error instanceof Unrecoverable) {
        await msg.fail(error.message.slice(0, MAX_REASON_CHARS));
        return;
      }
      if (abort.signal.aborted) {
        // Given up on, not failed. Released by its receipt: due again at once, this delivery uncounted; and
        // when the abort came because the message went to someone else, their delivery is left alone (a
        // postpone by id would make it due again under them).
        await msg.release();
        return;
      }
      msg.postpone(retry?.(msg.epoch, error));
      throw error; // reported by the subscription (onError / "error")
    } finally {
      this.running.delete(msg.receipt);
    }
  }
}
