/**
 * Outgoing acks and postpones of a subscription, batched per tick.
 *
 * `ack()` and `postpone()` queue a message's id, or its receipt when fenced; the queue is sent on the next
 * tick, one frame per kind (and delay), at most 1000 entries a frame. Id frames carry no `ref` (the fast
 * path, no reply); receipt frames carry one, so the server answers with the receipts it refused as stale.
 * While the socket is down the queue waits for the next connection (`flush()` after `subscribed`); once
 * the subscription has ended it goes over HTTP instead. A frame the socket failed to take is queued again.
 */
import type { FrameSink } from "./connection.js";
import type { ClientFrame, Ref, ServerFrame, StaleInfo } from "./types.js";

/** Most ids in one ack or postpone frame (the server's default request limit). */
const MAX_PER_FRAME = 1000;

/** Where settlements go once the socket is gone for good. */
export interface HttpSettler {
  ack(ids: string[]): Promise<unknown>;
  postpone(ids: string[], delayMs?: number): Promise<unknown>;
  /** Resolve with the receipts refused as stale. */
  ackReceipts(receipts: string[]): Promise<string[]>;
  postponeReceipts(receipts: string[], delayMs?: number): Promise<string[]>;
}

export interface OutboxDeps {
  sink: FrameSink;
  /** True once the subscription has ended: settle over HTTP. */
  ended(): boolean;
  http: HttpSettler;
  nextRef(): Ref;
  /** The server refused fenced settlements as stale. */
  stale(info: StaleInfo): void;
  /** An HTTP settlement failed. */
  error(error: Error): void;
}

/** Acks and postpones of one kind of key (ids, or receipts). */
class Pending {
  readonly acks = new Set<string>();
  /** Keyed by delay ("" = the table's backoff). */
  readonly postpones = new Map<string, { delayMs: number | undefined; keys: Set<string> }>();

  ack(key: string): void {
    this.acks.add(key);
    for (const p of this.postpones.values()) p.keys.delete(key);
  }

  postpone(key: string, delayMs: number | undefined): void {
    if (this.acks.has(key)) return;
    const group = delayMs === undefined ? "" : String(delayMs);
    let entry = this.postpones.get(group);
    if (!entry) this.postpones.set(group, (entry = { delayMs, keys: new Set() }));
    entry.keys.add(key);
  }

  get empty(): boolean {
    return this.acks.size === 0 && [...this.postpones.values()].every((p) => p.keys.size === 0);
  }

  /** Empties the queue; returns it in frame-sized parts, acks first. */
  take(): { acks: string[][]; postpones: Array<{ delayMs: number | undefined; keys: string[] }> } {
    const acks = chunk([...this.acks]);
    const postpones = [...this.postpones.values()].flatMap(({ delayMs, keys }) =>
      chunk([...keys]).map((part) => ({ delayMs, keys: part })),
    );
    this.acks.clear();
    this.postpones.clear();
    return { acks, postpones };
  }
}

export class Outbox {
  private readonly ids = new Pending();
  private readonly receipts = new Pending();
  private flushScheduled = false;
  private readonly sends = new Set<Promise<void>>();
  private readonly httpSettles = new Set<Promise<void>>();

  constructor(private readonly deps: OutboxDeps) {}

  /** Queues an ack of `key`: a receipt when `fenced`, else an id. */
  ack(key: string, fenced: boolean): void {
    (fenced ? this.receipts : this.ids).ack(key);
    this.scheduleFlush();
  }

  postpone(key: string, fenced: boolean, delayMs: number | undefined): void {
    (fenced ? this.receipts : this.ids).postpone(key, delayMs);
    this.scheduleFlush();
  }

  /** Sends what is queued: over the socket when it can carry frames, over HTTP once ended, else later. */
  flush(): void {
    this.flushScheduled = false;
    if (this.ids.empty && this.receipts.empty) return;
    if (this.deps.sink.canSend) this.sendFrames();
    else if (this.deps.ended()) this.settleOverHttp();
    // Otherwise the socket is (re)connecting: the next `subscribed` flushes.
  }

  /** Resolves once every frame handed out is taken by the socket, and every HTTP settlement is done. */
  async drained(): Promise<void> {
    await Promise.all([...this.sends, ...this.httpSettles]);
  }

  /** An `acked` or `postponed` reply to a receipt frame. */
  reply(frame: Extract<ServerFrame, { type: "acked" | "postponed" }>): void {
    if (frame.stale && frame.stale.length > 0)
      this.deps.stale({ kind: frame.type === "acked" ? "ack" : "postpone", receipts: frame.stale });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private sendFrames(): void {
    const frames: ClientFrame[] = [];
    const ids = this.ids.take();
    for (const part of ids.acks) frames.push({ type: "ack", ids: part });
    for (const { delayMs, keys } of ids.postpones)
      frames.push(delayMs === undefined ? { type: "postpone", ids: keys } : { type: "postpone", ids: keys, delayMs });
    const receipts = this.receipts.take();
    for (const part of receipts.acks) frames.push({ type: "ack", receipts: part, ref: this.deps.nextRef() });
    for (const { delayMs, keys } of receipts.postpones) {
      const ref = this.deps.nextRef();
      frames.push(delayMs === undefined ? { type: "postpone", receipts: keys, ref } : { type: "postpone", receipts: keys, delayMs, ref });
    }
    for (const frame of frames) this.sendFrame(frame);
  }

  private sendFrame(frame: ClientFrame): void {
    const sent = (this.deps.sink.send(frame) ?? Promise.resolve(false)).then((taken) => {
      if (!taken) this.requeue(frame); // the socket went away under us: the next connection (or HTTP) takes it
    });
    this.sends.add(sent);
    void sent.finally(() => this.sends.delete(sent));
  }

  private requeue(frame: ClientFrame): void {
    if (frame.type !== "ack" && frame.type !== "postpone") return; // not ours: an answered request's (answered.ts) or the closer's
    const delayMs = frame.type === "postpone" ? frame.delayMs : undefined;
    const again = (key: string, fenced: boolean) => (frame.type === "ack" ? this.ack(key, fenced) : this.postpone(key, fenced, delayMs));
    for (const id of frame.ids ?? []) again(id, false);
    for (const receipt of frame.receipts ?? []) again(receipt, true);
  }

  private settleOverHttp(): void {
    const { http } = this.deps;
    const ids = this.ids.take();
    const receipts = this.receipts.take();
    const calls: Array<() => Promise<unknown>> = [];
    for (const part of ids.acks) calls.push(() => http.ack(part));
    for (const { delayMs, keys } of ids.postpones) calls.push(() => http.postpone(keys, delayMs));
    for (const part of receipts.acks) calls.push(async () => this.reportStale("ack", await http.ackReceipts(part)));
    for (const { delayMs, keys } of receipts.postpones)
      calls.push(async () => this.reportStale("postpone", await http.postponeReceipts(keys, delayMs)));
    for (const call of calls) {
      const p = call().then(
        () => undefined,
        (err: unknown) => this.deps.error(err instanceof Error ? err : new Error(String(err))),
      );
      this.httpSettles.add(p);
      void p.finally(() => this.httpSettles.delete(p));
    }
  }

  private reportStale(kind: StaleInfo["kind"], stale: string[]): void {
    if (stale.length > 0) this.deps.stale({ kind, receipts: stale });
  }
}

function chunk<T>(items: T[], size = MAX_PER_FRAME): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
