/**
 * Lease extensions of a subscription's messages, one receipt a request so the answer is that message's own.
 *
 * Over the socket when it can carry frames: an `extend` frame with a `ref`, answered by the `extended` (or
 * `error`) frame with the same ref. Over HTTP otherwise. Extending twice is harmless (the server keeps the
 * later due time), so a request the socket failed to take, or whose socket went away before the answer,
 * is sent again over HTTP rather than failed.
 */
import type { FrameSink } from "./connection.js";
import { TablemqError } from "./http.js";
import type { ExtendOutcome } from "./message.js";
import type { ExtendResult, Ref, ServerFrame } from "./types.js";

export interface ExtenderDeps {
  sink: FrameSink;
  http(receipts: string[], byMs: number): Promise<ExtendResult>;
  nextRef(): Ref;
  /** How long a request over the socket waits for its answer. */
  timeoutMs: number;
}

interface Waiting {
  receipt: string;
  byMs: number;
  /** The connection the frame went out on. */
  generation: number;
  timer: NodeJS.Timeout;
  resolve(outcome: ExtendOutcome): void;
  reject(error: unknown): void;
}

export class LeaseExtender {
  private readonly waiting = new Map<Ref, Waiting>();

  constructor(private readonly deps: ExtenderDeps) {}

  extend(receipt: string, byMs: number): Promise<ExtendOutcome> {
    const ref = this.deps.nextRef();
    const generation = this.deps.sink.generation;
    const sent = this.deps.sink.send({ type: "extend", receipts: [receipt], byMs, ref });
    if (sent === undefined) return this.overHttp(receipt, byMs);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(ref);
        reject(new TablemqError(0, "timeout", `extend: no answer from the server within ${this.deps.timeoutMs} ms`));
      }, this.deps.timeoutMs);
      this.waiting.set(ref, { receipt, byMs, generation, timer, resolve, reject });
      void sent.then((taken) => {
        if (!taken) this.retryOverHttp(ref);
      });
    });
  }

  /** Takes the `extended` frame answering one of our requests; false when the ref is not ours. */
  reply(frame: Extract<ServerFrame, { type: "extended" }>): boolean {
    const w = this.take(frame.ref);
    w?.resolve(outcome(w.receipt, frame.extended, frame.stale ?? [], frame.unchanged ?? []));
    return w !== undefined;
  }

  /** Takes an `error` frame answering one of our requests; false when it is not an answer to one. */
  error(frame: Extract<ServerFrame, { type: "error" }>): boolean {
    const w = frame.ref === undefined ? undefined : this.take(frame.ref);
    w?.reject(new TablemqError(0, frame.code, frame.message));
    return w !== undefined;
  }

  /** The socket of `generation` is gone: its requests will not be answered there. */
  gone(generation: number): void {
    for (const [ref, w] of this.waiting) if (w.generation === generation) this.retryOverHttp(ref);
  }

  private retryOverHttp(ref: Ref): void {
    const w = this.take(ref);
    if (w) this.overHttp(w.receipt, w.byMs).then(w.resolve, w.reject);
  }

  private take(ref: Ref): Waiting | undefined {
    const w = this.waiting.get(ref);
    if (w) {
      this.waiting.delete(ref);
      clearTimeout(w.timer);
    }
    return w;
  }

  private async overHttp(receipt: string, byMs: number): Promise<ExtendOutcome> {
    const { extended, stale, unchanged } = await this.deps.http([receipt], byMs);
    return outcome(receipt, extended, stale, unchanged);
  }
}

/** A lease already longer than asked for is as good as extended: the message is still this consumer's. */
function outcome(receipt: string, extended: number, stale: readonly string[], unchanged: readonly string[]): ExtendOutcome {
  if (stale.includes(receipt)) return "stale";
  return extended > 0 || unchanged.includes(receipt) ? "extended" : "gone";
}
