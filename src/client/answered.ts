/**
 * Requests of a subscription that wait for the server's answer, one message each: lease extensions,
 * fails, releases (`msg.release()`), and acks the application awaits (`msg.ack({ confirm: true })`).
 *
 * Over the socket when it can carry frames: the frame carries a `ref`, answered by the server's frame with
 * the same ref (`extended`, `failed`, `released`, `acked`) or by an `error` frame. Over HTTP otherwise. Each of these
 * is safe to send twice (an extension keeps the later due time; a second fail, release or ack of a message
 * already moved, released or acked changes nothing: a release is fenced by its receipt), so a request the socket failed to take, or whose socket
 * went away before the answer, is sent again over HTTP rather than failed.
 */
import type { FrameSink } from "./connection.js";
import { TablemqError } from "./http.js";
import type { ClientFrame, Ref, ServerFrame } from "./types.js";

/** What a one-message request found: done, a stale receipt (delivered again since), or a message acked, moved or unknown. */
export type Outcome = "done" | "stale" | "gone";

/** The count and stale receipts of an answer, over either path. */
export interface Answer {
  count: number;
  stale: readonly string[];
  /** An extension's receipts already due later than asked: as good as extended. */
  unchanged?: readonly string[];
}

export interface AnsweredDeps {
  sink: FrameSink;
  nextRef(): Ref;
  /** How long a request over the socket waits for its answer. */
  timeoutMs: number;
}

/** One request: its frame (without ref), the same over HTTP, and the receipt or id it names. */
export interface AnsweredRequest {
  frame: DistributiveOmit<ClientFrame, "ref">;
  /** What the outcome is judged by: the receipt for a fenced request, else the id. */
  key: string;
  http(): Promise<Answer>;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

interface Waiting {
  request: AnsweredRequest;
  /** The connection the frame went out on. */
  generation: number;
  timer: NodeJS.Timeout;
  resolve(outcome: Outcome): void;
  reject(error: unknown): void;
}

export class AnsweredRequests {
  private readonly waiting = new Map<Ref, Waiting>();

  constructor(private readonly deps: AnsweredDeps) {}

  send(request: AnsweredRequest): Promise<Outcome> {
    const ref = this.deps.nextRef();
    const generation = this.deps.sink.generation;
    const sent = this.deps.sink.send({ ...request.frame, ref } as ClientFrame);
    if (sent === undefined) return this.overHttp(request);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(ref);
        reject(new TablemqError(0, "timeout", `${request.frame.type}: no answer from the server within ${this.deps.timeoutMs} ms`));
      }, this.deps.timeoutMs);
      this.waiting.set(ref, { request, generation, timer, resolve, reject });
      void sent.then((taken) => {
        if (!taken) this.retryOverHttp(ref);
      });
    });
  }

  /** Takes a frame answering one of our requests; false when its ref is not ours. */
  reply(frame: Extract<ServerFrame, { type: "extended" | "failed" | "released" | "acked" }>): boolean {
    const w = this.take(frame.ref);
    if (!w) return false;
    const count = frameCount(frame);
    const unchanged = frame.type === "extended" ? frame.unchanged : undefined;
    w.resolve(outcome(w.request.key, { count, stale: frame.stale ?? [], ...(unchanged ? { unchanged } : {}) }));
    return true;
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
    if (w) this.overHttp(w.request).then(w.resolve, w.reject);
  }

  private take(ref: Ref): Waiting | undefined {
    const w = this.waiting.get(ref);
    if (w) {
      this.waiting.delete(ref);
      clearTimeout(w.timer);
    }
    return w;
  }

  private async overHttp(request: AnsweredRequest): Promise<Outcome> {
    return outcome(request.key, await request.http());
  }
}

function frameCount(frame: Extract<ServerFrame, { type: "extended" | "failed" | "released" | "acked" }>): number {
  if (frame.type === "extended") return frame.extended;
  if (frame.type === "failed") return frame.failed;
  if (frame.type === "released") return frame.released;
  return frame.acked;
}

/** A lease already longer than asked for is as good as extended: the message is still this consumer's. */
function outcome(key: string, answer: Answer): Outcome {
  if (answer.stale.includes(key)) return "stale";
  return answer.count > 0 || (answer.unchanged ?? []).includes(key) ? "done" : "gone";
}
