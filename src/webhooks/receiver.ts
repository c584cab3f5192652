import type { Clock, TimerHandle } from "../clock.js";
import type { Logger } from "../logger.js";
import type { Subscription } from "../manager/manager.js";
import type { Receiver } from "../manager/receivers.js";
import type { Delivery, MessageRow } from "../model/messages.js";
import { LeaseKeeper } from "./lease-keeper.js";
import { Recoverer, type RetryPolicy } from "./recoverer.js";
import { describeError, requestBody } from "./request.js";
import { SIGNATURE_HEADER, sign } from "./signature.js";
import { ERROR_TEXT_CHARS, type Transport } from "./transport.js";
import type { TableAccess, WebhookCounters, WebhookState, WebhookStatus, WebhookTarget } from "./types.js";

/** How often a receiver of a paused table looks whether it was resumed. */
export const PAUSE_RECHECK_MS = 1_000;

export interface WebhookReceiverDeps {
  clock: Clock;
  log: Logger;
  retry: () => RetryPolicy;
  transport: Transport;
  table: TableAccess;
  counters: WebhookCounters;
  /** A unique id per batch, sent with every attempt at it (so a target can drop repeats). */
  newDeliveryId: () => string;
  /** Told when the manager ended the subscription (table dropped, engine closed). */
  onClosed?: (reason: string) => void;
}

interface HeldBatch {
  rows: MessageRow[];
  delivery: string;
  attempts: number;
  /** The target answered 2xx; only the ack is left (it failed once and is being retried). */
  posted: boolean;
}

/**
 * One webhook destination: a Receiver of its table's manager that POSTs each batch as JSON.
 *
 * Custody. `send` takes the batch into a FIFO and resolves at once: the manager records the delivery
 * (its post-send postpone) and counts the messages against maxInFlight = batchSize, so it sends nothing
 * more while a full batch is held. One drain loop POSTs the head of the FIFO: a 2xx acks it through the
 * manager (which returns the credit), anything else or a timeout marks the destination DOWN and leaves the
 * batch at the head, where the Recoverer retries it with exponential backoff (Synapse's appservice
 * recoverer): the same batch, so nothing overtakes it and order per destination is kept. While DOWN,
 * maxInFlight shrinks to what is held, so a partial batch does not draw more messages to a destination
 * that is failing. The first success marks it UP again, resets the backoff and drains what is left at once.
 *
 * Leases. Held messages stay leased in their table while the receiver holds them (the LeaseKeeper), so other
 * subscribers do not get them; those that are no longer ours (delivered again, e.g. after a database
 * outage outlasted the lease) leave the batches not yet on the wire.
 *
 * Phases: open; closing (graceful stop: unsubscribed, the POST in flight may finish and be acked, then
 * the rest is released to the table); stopped.
 */
export class WebhookReceiver implements Receiver {
  private target: WebhookTarget;
  private readonly queue: HeldBatch[] = [];
  private stateValue: WebhookState = "up";
  private phase: "open" | "closing" | "stopped" = "open";
  private draining = false;
  private drained: Promise<void> = Promise.resolve();
  private stopping: Promise<void> | undefined;
  private posting: AbortController | undefined;
  /** The batch being POSTed right now. */
  private onTheWire: HeldBatch | undefined;
  private subscription: Subscription | undefined;
  private readonly keeper: LeaseKeeper;
  private readonly recoverer: Recoverer;
  private lastError: string | null = null;
  private lastErrorAt: number | null = null;
  private lastDeliveredAt: number | null = null;
  /** Set while the table is paused and a batch waits: the timer that looks again. */
  private pauseCheck: TimerHandle | undefined;

  constructor(
    target: WebhookTarget,
    private readonly deps: WebhookReceiverDeps,
  ) {
    this.target = { ...target };
    this.recoverer = new Recoverer(deps.clock, deps.retry, () => this.kick());
    this.keeper = new LeaseKeeper({
      clock: deps.clock,
      log: deps.log,
      table: deps.table,
      held: () => this.queue.flatMap((b) => b.rows.map((r) => ({ id: r.id, epoch: r.epoch }))),
      onStale: (stale) => this.dropStale(stale),
      labels: { table: target.table, webhook: target.name },
    });
  }

  get state(): WebhookState {
    return this.stateValue;
  }

  /** batchSize while UP; while DOWN only what it holds (at least 1), so nothing more comes to it. */
  get maxInFlight(): number {
    return this.stateValue === "down" ? Math.max(1, this.heldCount) : this.target.batchSize;
  }

  get heldCount(): number {
    let n = 0;
    for (const b of this.queue) n += b.rows.length;
    return n;
  }

  status(): WebhookStatus {
    return {
      state: this.stateValue,
      lastError: this.lastError,
      lastErrorAt: this.lastErrorAt,
      lastDeliveredAt: this.lastDeliveredAt,
      failures: this.recoverer.failures,
      nextRetryAt: this.recoverer.nextRetryAt ?? null,
      held: this.heldCount,
    };
  }

  /** Takes the subscription the registry made for it (ended at once if the receiver stopped meanwhile). */
  attach(subscription: Subscription): void {
    if (this.phase !== "open") subscription.unsubscribe();
    else this.subscription = subscription;
  }

  /** A changed configuration applies from the next attempt on; a destination waiting to retry retries now. */
  configure(target: WebhookTarget): void {
    this.target = { ...target };
    if (this.recoverer.scheduled) {
      this.recoverer.cancel();
      this.kick();
    }
  }

  send(batch: MessageRow[]): Promise<void> {
    if (this.phase !== "open") return Promise.reject(new Error("webhook receiver stopped"));
    this.queue.push({ rows: batch, delivery: this.deps.newDeliveryId(), attempts: 0, posted: false });
    this.keeper.arm();
    this.kick();
    return Promise.resolve();
  }

  /** The manager ended the subscription: stop now; the held messages come back when their leases end. */
  onClose(reason: string): void {
    if (this.phase === "stopped") return;
    this.subscription = undefined;
    this.halt();
    this.queue.length = 0;
    this.deps.onClosed?.(reason);
  }

  /**
   * Stops the receiver and hands what it holds back to the table, due now. `graceful` lets a POST in
   * flight finish (it is bounded by timeoutMs) and acks it on a 2xx; otherwise the POST is abandoned.
   * Idempotent.
   */
  stop(graceful: boolean): Promise<void> {
    if (this.stopping) return this.stopping;
    if (this.phase === "stopped") return Promise.resolve();
    this.phase = "closing";
    this.subscription?.unsubscribe(); // the manager sends nothing more
    this.subscription = undefined;
    this.recoverer.cancel();
    this.keeper.disarm();
    if (!graceful) this.posting?.abort(new Error("webhook stopped"));
    this.stopping = (async () => {
      await this.drained;
      this.halt();
      const rest = this.queue.splice(0).flatMap((b) => b.rows.map((r) => r.id));
      if (rest.length === 0) return;
      try {
        await this.deps.table.release(rest);
      } catch (err) {
        this.deps.log.warn(
          { err, table: this.target.table, webhook: this.target.name, count: rest.length },
          "webhook could not hand its messages back; they are due when their leases end",
        );
      }
    })();
    return this.stopping;
  }

  private halt(): void {
    this.phase = "stopped";
    if (this.pauseCheck !== undefined) this.deps.clock.clearTimeout(this.pauseCheck);
    this.pauseCheck = undefined;
    this.recoverer.cancel();
    this.keeper.stop();
    this.posting?.abort(new Error("webhook stopped"));
  }

  /**
   * Starts the drain loop unless it runs, a retry is scheduled (the recoverer owns the next try), it
   * stopped, or it waits for its paused table to be resumed.
   */
  private kick(): void {
    if (this.draining || this.phase !== "open" || this.recoverer.scheduled || this.pauseCheck !== undefined) return;
    this.draining = true;
    this.drained = this.drain();
  }

  /** One batch in flight at a time, oldest first; stops at a failure, which the recoverer takes over. */
  private async drain(): Promise<void> {
    try {
      while (this.phase === "open" && this.queue.length > 0) {
        if (!(await this.deliverHead())) break;
      }
      // Recovered with nothing left to prove it (every held message was acked elsewhere): UP, as Synapse does.
      if (this.phase === "open" && this.queue.length === 0 && this.stateValue === "down" && !this.recoverer.scheduled) this.markUp();
    } finally {
      this.draining = false; // synchronously after the last check: a send() from here on starts a new loop
    }
  }

  /** POSTs the head batch (unless only its ack is left) and acks it; false when it stays at the head. */
  private async deliverHead(): Promise<boolean> {
    const head = this.queue[0]!;
    if (!head.posted && this.deps.table.paused()) {
      // Paused: hold the batch (its lease is kept) and look again in a while.
      this.pauseCheck = this.deps.clock.setTimeout(() => {
        this.pauseCheck = undefined;
        this.kick();
      }, PAUSE_RECHECK_MS);
      return false;
    }
    if (!head.posted) {
      const error = await this.post(head);
      if (this.phase === "stopped") return false;
      if (error !== undefined) {
        this.deps.counters.failedBatches++;
        this.recordError(error);
        if (this.phase === "open") {
          if (this.stateValue === "up") {
            this.stateValue = "down";
            this.deps.log.warn(
              { table: this.target.table, webhook: this.target.name, error },
              "webhook destination is down; retrying with backoff",
            );
          }
          this.recoverer.failed();
        }
        return false;
      }
      head.posted = true;
      this.deps.counters.deliveredBatches++;
      this.deps.counters.deliveredMessages += head.rows.length;
      this.lastDeliveredAt = this.deps.clock.now();
      this.recoverer.succeeded();
      if (this.stateValue === "down") this.markUp();
    }
    try {
      await this.deps.table.ack(head.rows.map((r) => r.id));
    } catch (err) {
      if (this.phase === "stopped") return false;
      // The target has the batch; the database did not take the ack. Retry the ack (not the POST), with
      // the same backoff, and keep the batch at the head so nothing overtakes it.
      this.recordError(`ack failed: ${describeError(err)}`);
      this.deps.log.warn(
        { err, table: this.target.table, webhook: this.target.name },
        "webhook batch delivered but its ack failed; retrying the ack",
      );
      if (this.phase === "open") this.recoverer.failed();
      return false;
    }
    this.queue.shift();
    if (this.queue.length === 0) this.keeper.disarm();
    return true;
  }

  private markUp(): void {
    this.stateValue = "up";
    this.deps.log.info({ table: this.target.table, webhook: this.target.name }, "webhook destination is up again");
  }

  private recordError(error: string): void {
    this.lastError = error;
    this.lastErrorAt = this.deps.clock.now();
  }

  /** One attempt; resolves with why it failed, or undefined on a 2xx. Never throws. */
  private async post(head: HeldBatch): Promise<string | undefined> {
    const { clock, transport } = this.deps;
    const t = this.target;
    head.attempts++;
    const body = requestBody(t, head, clock.now());
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "user-agent": "tablemq-webhook",
      "x-tablemq-delivery": head.delivery,
    };
    if (t.secret !== undefined) headers[SIGNATURE_HEADER] = sign(t.secret, body);
    const abort = new AbortController();
    this.posting = abort;
    this.onTheWire = head;
    let timedOut = false;
    const timer = clock.setTimeout(() => {
      timedOut = true;
      abort.abort(new Error("timeout"));
    }, t.timeoutMs);
    try {
      const res = await transport({ url: t.url, body, headers, signal: abort.signal });
      if (res.status >= 200 && res.status < 300) return undefined;
      // A target's error text goes into logs and the API on one line.
      const text = res.text.replace(CONTROL_CHARACTERS, " ").trim().slice(0, ERROR_TEXT_CHARS);
      return `HTTP ${res.status}${text ? `: ${text}` : ""}`;
    } catch (err) {
      if (timedOut) return `timed out after ${t.timeoutMs} ms`;
      return `request failed: ${describeError(err)}`;
    } finally {
      clock.clearTimeout(timer);
      if (this.posting === abort) {
        this.posting = undefined;
        this.onTheWire = undefined;
      }
    }
  }

  /**
   * Held messages whose delivery is no longer current (acked by someone, or delivered again after a lease
   * that ran out, e.g. while the database was unreachable) are not this destination's to send any more:
   * they leave the batches that are not on the wire. A batch on the wire, or answered 2xx and waiting for
   * its ack, is left as it is (acking a message that was processed is right either way).
   */
  private dropStale(stale: readonly Delivery[]): void {
    const gone = new Set(stale.map((d) => `${d.id}:${d.epoch}`));
    this.deps.log.debug(
      { table: this.target.table, webhook: this.target.name, count: gone.size },
      "held webhook messages were delivered again or acked elsewhere; dropping them",
    );
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const batch = this.queue[i]!;
      if (batch.posted || batch === this.onTheWire) continue;
      batch.rows = batch.rows.filter((r) => !gone.has(`${r.id}:${r.epoch}`));
      if (batch.rows.length === 0) this.queue.splice(i, 1);
    }
    if (this.queue.length === 0) this.keeper.disarm();
  }
}

// eslint-disable-next-line no-control-regex -- control characters are what it finds
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]+/g;
