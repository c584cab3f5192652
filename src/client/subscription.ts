/**
 * A WebSocket subscription to one table (API.md, "Subscribe").
 *
 * Two ways to consume, chosen by `onMessage`:
 * - iterator mode (no onMessage): `for await (const msg of sub)`; the application acks (`msg.ack()`) or
 *   postpones each message; one it leaves alone is redelivered by the server after the table's ack wait.
 *   Leaving the loop (`break`, `return`, a throw) closes the subscription.
 * - callback mode: `onMessage(msg)` runs for each message, `concurrency` at a time (default 1, in order).
 *   When the handler resolves and the message was neither acked nor postponed, it is acked; when it throws
 *   (or rejects), it is postponed with the table's backoff and the error is reported as an "error" event.
 *
 * `ack()` and `postpone()` queue a frame; the frames of one tick are sent together. While the socket is
 * down they wait for the next connection; after the subscription has ended they go over HTTP instead.
 * `flush()` waits until queued frames are handed to the socket.
 *
 * The connection is re-established after an unexpected drop, with capped, jittered exponential backoff
 * (`reconnect`, or `false` to end instead); the backoff starts over once a connection has stayed up for
 * a few seconds, and honours a `retry-after` on a refused upgrade (429 overloaded, 503 unavailable). Permanent failures are not retried: an upgrade answered with a
 * 4xx (404 table_not_found, 401/403, 400), or close code 1008 (policy violation). They end the
 * subscription: an "error" event with `fatal: true`, then "close", the iterator rejects once, `done()`
 * rejects. Messages that arrived but were not yet handed to the application when the socket dropped are
 * dropped from the buffer: their delivery belonged to the dead connection, and the server delivers them
 * again after the ack wait. On `close()` such messages are released at once (postponed with delay 0).
 *
 * The buffer needs no bound of its own: the server stops sending once `maxInFlight` messages are unacked.
 */
import WebSocket from "ws";
import { type ReconnectOptions, reconnectDelay, resolveReconnect } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { errorFromResponse, TablemqError } from "./http.js";
import type { ClientFrame, ServerFrame, SubscribedInfo, WireMessage } from "./types.js";

/** Most ids in one ack or postpone frame (the server's default request limit). */
const MAX_IDS_PER_FRAME = 1000;
/** How long close() waits for the server to answer the close handshake before dropping the socket. */
const CLOSE_HANDSHAKE_MS = 2_000;
const MAX_ERROR_BODY = 64 * 1024;
/**
 * A connection that stayed subscribed this long resets the reconnect backoff. Resetting on every
 * `subscribed` frame instead would let a server that accepts and then drops at once be hammered.
 */
const STABLE_CONNECTION_MS = 5_000;

export interface SubscribeOptions<T = unknown> {
  /** Unacked messages the server may hand this subscriber; the server's default when absent. */
  maxInFlight?: number;
  /** Reconnect after an unexpected drop (default `{ minDelayMs: 100, maxDelayMs: 10000 }`), or `false`. */
  reconnect?: ReconnectOptions | false;
  /** Callback mode: called per message; acked when it resolves, postponed when it throws. */
  onMessage?: (message: Message<T>) => void | Promise<void>;
  /** Callback mode: handlers running at once; default 1. */
  concurrency?: number;
}

/** A delivered message. `payload` is the parsed JSON value. */
export interface Message<T = unknown> {
  readonly id: string;
  readonly priority: number;
  /** Earlier deliveries of this message (0 on the first). */
  readonly epoch: number;
  readonly payload: T;
  /** True once acked or postponed through this object. */
  readonly settled: boolean;
  /** Acks it (batched per tick). A second ack or postpone is ignored. */
  ack(): void;
  /** Hands it back for redelivery after `delayMs`, or after the table's backoff when absent. */
  postpone(delayMs?: number): void;
  toJSON(): WireMessage;
}

export interface ErrorContext {
  /** True when the error ended the subscription. */
  fatal: boolean;
  /** Set when an onMessage handler failed for this message. */
  messageId?: string;
}

export interface ReconnectingInfo {
  /** 1 for the first retry after a drop. */
  attempt: number;
  delayMs: number;
  /** Why the connection ended or could not be made. */
  error: TablemqError;
}

export interface SubscriptionEvents {
  subscribed: [info: SubscribedInfo];
  reconnecting: [info: ReconnectingInfo];
  error: [error: Error, context: ErrorContext];
  /** Once, when the subscription has ended; `error` is set when a permanent failure ended it. */
  close: [info: { error?: TablemqError }];
}

/** Where settlements go once the socket is gone for good. */
export interface HttpSettler {
  ack(ids: string[]): Promise<unknown>;
  postpone(ids: string[], delayMs?: number): Promise<unknown>;
}

export interface SubscriptionConnection {
  /** ws:// or wss:// URL of the subscribe endpoint, query included. */
  url: string;
  headers: Record<string, string>;
  handshakeTimeoutMs: number;
  http: HttpSettler;
}

type State = "connecting" | "open" | "backoff" | "closing" | "closed";

class ReceivedMessage<T> implements Message<T> {
  settled = false;

  constructor(
    readonly id: string,
    readonly priority: number,
    readonly epoch: number,
    readonly payload: T,
    /** The connection that delivered it. */
    readonly generation: number,
    private readonly owner: Subscription<T>,
  ) {}

  ack(): void {
    if (this.settled) return;
    this.settled = true;
    this.owner.queueAck(this.id);
  }

  postpone(delayMs?: number): void {
    if (delayMs !== undefined && !(Number.isSafeInteger(delayMs) && delayMs >= 0)) {
      throw new RangeError(`postpone: delayMs must be a whole number of milliseconds >= 0, got ${delayMs}`);
    }
    if (this.settled) return;
    this.settled = true;
    this.owner.queuePostpone(this.id, delayMs);
  }

  toJSON(): WireMessage {
    return { id: this.id, priority: this.priority, epoch: this.epoch, payload: this.payload };
  }
}

interface Waiter<T> {
  resolve(result: IteratorResult<Message<T>>): void;
  reject(error: unknown): void;
}

export class Subscription<T = unknown> extends Emitter<SubscriptionEvents> implements AsyncIterable<Message<T>> {
  readonly table: string;
  private readonly connection: SubscriptionConnection;
  private readonly reconnect: Required<ReconnectOptions> | false;
  private readonly onMessage: ((message: Message<T>) => void | Promise<void>) | undefined;
  private readonly concurrency: number;

  private state: State = "connecting";
  private ws: WebSocket | undefined;
  /** Increases with every connection attempt; frames and settlements are tied to one. */
  private generation = 0;
  /** The generation whose `subscribed` frame has arrived (frames may be sent on it). */
  private subscribedGeneration = -1;
  private attempt = 0;
  private subscribedAt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private info: SubscribedInfo | undefined;

  private buffer: Array<ReceivedMessage<T>> = [];
  private readonly waiters: Array<Waiter<T>> = [];
  private iterating = false;
  private fatalError: TablemqError | undefined;
  private fatalReported = false;
  private running = 0;
  private idleWaiters: Array<() => void> = [];

  private readonly pendingAcks = new Set<string>();
  /** Keyed by delay ("" = the table's backoff). */
  private readonly pendingPostpones = new Map<string, { delayMs: number | undefined; ids: Set<string> }>();
  private flushScheduled = false;
  private readonly sends = new Set<Promise<void>>();
  private readonly httpSettles = new Set<Promise<void>>();

  private closing: Promise<void> | undefined;
  private doneWaiters: Array<{ resolve(): void; reject(e: unknown): void }> = [];

  constructor(table: string, connection: SubscriptionConnection, options: SubscribeOptions<T> = {}) {
    super();
    this.table = table;
    this.connection = connection;
    this.reconnect = options.reconnect === false ? false : resolveReconnect(options.reconnect ?? {});
    this.onMessage = options.onMessage;
    this.concurrency = options.concurrency ?? 1;
    if (!(Number.isInteger(this.concurrency) && this.concurrency >= 1)) {
      throw new RangeError(`concurrency must be an integer >= 1, got ${options.concurrency}`);
    }
    this.connect();
  }

  /** The last `subscribed` frame, once one arrived. */
  get subscribedInfo(): SubscribedInfo | undefined {
    return this.info;
  }

  /** True while a socket is open and subscribed. */
  get connected(): boolean {
    return this.state === "open" && this.canSend();
  }

  /** True once the subscription has ended (close() or a permanent failure). */
  get closed(): boolean {
    return this.state === "closed";
  }

  /**
   * Resolves when the subscription ends through close(); rejects with the error of a permanent failure.
   */
  done(): Promise<void> {
    if (this.state === "closed") return this.fatalError ? Promise.reject(this.fatalError) : Promise.resolve();
    return new Promise((resolve, reject) => this.doneWaiters.push({ resolve, reject }));
  }

  [Symbol.asyncIterator](): AsyncIterator<Message<T>> {
    if (this.onMessage) throw new Error("this subscription has an onMessage handler; it cannot also be iterated");
    if (this.iterating) throw new Error("a subscription can be iterated only once");
    this.iterating = true;
    return {
      next: () => this.next(),
      return: async () => {
        await this.close();
        return { done: true, value: undefined };
      },
    };
  }

  /**
   * Sends the acks and postpones queued so far and waits until the socket has taken them (or, after the
   * subscription ended, until their HTTP requests are done). While the socket is down they stay queued for
   * the next connection: flush does not wait for a reconnect. A frame on the socket is not a commit; use
   * `client.ack()` over HTTP when the caller must know the ack is committed.
   */
  async flush(): Promise<void> {
    this.flushFrames();
    await Promise.all([...this.sends, ...this.httpSettles]);
  }

  /**
   * Ends the subscription: the iterator finishes, running handlers complete (their acks are sent),
   * buffered messages not yet handed out are released for immediate redelivery, and the socket closes.
   * Idempotent.
   */
  close(): Promise<void> {
    if (this.state === "closed") return Promise.resolve();
    this.closing ??= this.shutDown();
    return this.closing;
  }

  // ---- settlement (called by messages) ----

  /** @internal */
  queueAck(id: string): void {
    this.pendingAcks.add(id);
    for (const p of this.pendingPostpones.values()) p.ids.delete(id);
    this.scheduleFlush();
  }

  /** @internal */
  queuePostpone(id: string, delayMs: number | undefined): void {
    if (this.pendingAcks.has(id)) return;
    const key = delayMs === undefined ? "" : String(delayMs);
    let group = this.pendingPostpones.get(key);
    if (!group) this.pendingPostpones.set(key, (group = { delayMs, ids: new Set() }));
    group.ids.add(id);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flushFrames());
  }

  private flushFrames(): void {
    this.flushScheduled = false;
    if (this.pendingAcks.size === 0 && this.pendingPostpones.size === 0) return;
    if (this.canSend()) {
      const ws = this.ws!;
      const frames: ClientFrame[] = [];
      for (const ids of chunk([...this.pendingAcks])) frames.push({ type: "ack", ids });
      for (const { delayMs, ids } of this.pendingPostpones.values()) {
        for (const part of chunk([...ids])) frames.push(delayMs === undefined ? { type: "postpone", ids: part } : { type: "postpone", ids: part, delayMs });
      }
      this.pendingAcks.clear();
      this.pendingPostpones.clear();
      for (const frame of frames) this.sendFrame(ws, frame);
    } else if (this.state === "closed") {
      this.settleOverHttp();
    }
    // Otherwise the socket is (re)connecting: the next `subscribed` flushes.
  }

  /** A socket is open and its `subscribed` frame has arrived (also while closing). */
  private canSend(): boolean {
    return this.ws !== undefined && this.ws.readyState === WebSocket.OPEN && this.subscribedGeneration === this.generation;
  }

  private sendFrame(ws: WebSocket, frame: ClientFrame): void {
    const sent = new Promise<void>((resolve) => {
      ws.send(JSON.stringify(frame), (err) => {
        if (err) {
          // The socket went away under us: queue the ids again for the next connection (or HTTP).
          if (frame.type === "ack") for (const id of frame.ids) this.queueAck(id);
          else for (const id of frame.ids) this.queuePostpone(id, frame.delayMs);
        }
        resolve();
      });
    });
    this.sends.add(sent);
    void sent.finally(() => this.sends.delete(sent));
  }

  private settleOverHttp(): void {
    const acks = [...this.pendingAcks];
    const postpones = [...this.pendingPostpones.values()];
    this.pendingAcks.clear();
    this.pendingPostpones.clear();
    const calls: Array<() => Promise<unknown>> = [];
    for (const ids of chunk(acks)) calls.push(() => this.connection.http.ack(ids));
    for (const { delayMs, ids } of postpones) for (const part of chunk([...ids])) calls.push(() => this.connection.http.postpone(part, delayMs));
    for (const call of calls) {
      const p = call().then(
        () => undefined,
        (err: unknown) => this.emit("error", asError(err), { fatal: false }),
      );
      this.httpSettles.add(p);
      void p.finally(() => this.httpSettles.delete(p));
    }
  }

  // ---- connection ----

  private connect(): void {
    const generation = ++this.generation;
    this.state = "connecting";
    let failure: TablemqError | undefined;
    let permanent = false;
    let opened = false;
    const ws = new WebSocket(this.connection.url, {
      headers: this.connection.headers,
      handshakeTimeout: this.connection.handshakeTimeoutMs,
    });
    this.ws = ws;

    ws.on("unexpected-response", (_req, res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        size += c.length;
        if (size <= MAX_ERROR_BODY) chunks.push(c);
      });
      const finish = () => {
        if (failure) return;
        const text = Buffer.concat(chunks).toString("utf8");
        const status = res.statusCode ?? 0;
        failure = errorFromResponse(status, safeParse(text), text, header(res.headers["retry-after"]));
        permanent = isPermanentStatus(status);
        ws.terminate();
      };
      res.on("end", finish);
      res.on("error", finish);
    });
    ws.on("open", () => {
      opened = true;
    });
    ws.on("error", (err) => {
      failure ??= new TablemqError(0, "unavailable", `subscribe ${this.table}: ${describeSocketError(err)}`, undefined, { cause: err });
    });
    ws.on("message", (data, isBinary) => {
      if (generation !== this.generation) return;
      if (isBinary) return;
      this.onFrame(generation, rawText(data));
    });
    ws.on("close", (code, reasonBuffer) => {
      const reason = reasonBuffer.toString("utf8");
      if (opened && code === 1008) {
        failure = new TablemqError(0, "policy_violation", reason || "the server closed the subscription (policy violation)");
        permanent = true;
      } else if (opened || !failure) {
        failure = new TablemqError(0, "unavailable", `subscription to ${this.table} closed by the server (code ${code}${reason ? `: ${reason}` : ""})`);
      }
      this.onConnectionEnd(generation, failure!, permanent);
    });
  }

  private onFrame(generation: number, text: string): void {
    let frame: ServerFrame;
    try {
      frame = JSON.parse(text) as ServerFrame;
    } catch {
      this.emit("error", new TablemqError(0, "bad_frame", `the server sent a frame that is not JSON: ${text.slice(0, 100)}`), { fatal: false });
      return;
    }
    switch (frame.type) {
      case "subscribed": {
        const { type: _type, ...info } = frame;
        this.info = info;
        this.state = this.state === "connecting" ? "open" : this.state;
        this.subscribedGeneration = generation;
        this.subscribedAt = Date.now();
        this.emit("subscribed", info);
        this.flushFrames();
        break;
      }
      case "messages":
        if (this.state === "closing" || this.state === "closed") {
          // Arrived while closing: hand them straight back.
          for (const m of frame.messages) this.queuePostpone(m.id, 0);
          break;
        }
        for (const m of frame.messages) {
          this.buffer.push(new ReceivedMessage<T>(m.id, m.priority, m.epoch, m.payload as T, generation, this));
        }
        this.dispatch();
        break;
      case "error":
        this.emit("error", new TablemqError(0, frame.code, frame.message), { fatal: false });
        break;
      default:
        // A newer server may add frame types (API.md allows additions): ignore them.
        break;
    }
  }

  private onConnectionEnd(generation: number, error: TablemqError, permanent: boolean): void {
    if (generation !== this.generation) return;
    this.ws = undefined;
    this.subscribedGeneration = -1;
    if (this.state === "closing" || this.state === "closed") return; // close() is in charge
    // Not yet handed out: their delivery belonged to this connection; the server redelivers them.
    this.buffer = this.buffer.filter((m) => m.generation !== generation);
    if (permanent || this.reconnect === false) {
      this.fail(error);
      return;
    }
    if (this.subscribedAt > 0 && Date.now() - this.subscribedAt >= STABLE_CONNECTION_MS) this.attempt = 0;
    this.subscribedAt = 0;
    // A 429 or 503 may say when to come back; never sooner than the backoff, never later than its cap.
    const retryAfter = Math.min(error.retryAfterMs ?? 0, this.reconnect.maxDelayMs);
    const delayMs = Math.max(reconnectDelay(this.attempt, this.reconnect), retryAfter);
    this.attempt++;
    this.state = "backoff";
    this.emit("reconnecting", { attempt: this.attempt, delayMs, error });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.state === "backoff") this.connect();
    }, delayMs);
  }

  // ---- consumption ----

  private dispatch(): void {
    if (this.onMessage) {
      this.pump();
      return;
    }
    while (this.waiters.length > 0 && this.buffer.length > 0) {
      this.waiters.shift()!.resolve({ done: false, value: this.buffer.shift()! });
    }
  }

  private next(): Promise<IteratorResult<Message<T>>> {
    const message = this.buffer.shift();
    if (message) return Promise.resolve({ done: false, value: message });
    if (this.state === "closed" || this.state === "closing") return this.endResult();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** What the iterator yields once the subscription has ended: the fatal error once, then done. */
  private endResult(): Promise<IteratorResult<Message<T>>> {
    if (this.fatalError && !this.fatalReported) {
      this.fatalReported = true;
      return Promise.reject(this.fatalError);
    }
    return Promise.resolve({ done: true, value: undefined });
  }

  private pump(): void {
    while (this.running < this.concurrency && this.buffer.length > 0 && this.state !== "closing" && this.state !== "closed") {
      void this.handle(this.buffer.shift()!);
    }
  }

  private async handle(message: ReceivedMessage<T>): Promise<void> {
    this.running++;
    try {
      await this.onMessage!(message);
      message.ack();
    } catch (err) {
      message.postpone();
      this.emit("error", asError(err), { fatal: false, messageId: message.id });
    } finally {
      this.running--;
      if (this.running === 0) for (const w of this.idleWaiters.splice(0)) w();
      this.pump();
    }
  }

  private whenIdle(): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  // ---- ending ----

  private async shutDown(): Promise<void> {
    this.state = "closing";
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    for (const w of this.waiters.splice(0)) w.resolve({ done: true, value: undefined });
    // Never handed out: release them for immediate redelivery rather than after the ack wait.
    for (const m of this.buffer.splice(0)) {
      m.settled = true;
      this.queuePostpone(m.id, 0);
    }
    await this.whenIdle();
    this.flushFrames();
    await Promise.all(this.sends);
    const ws = this.ws;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => ws.terminate(), CLOSE_HANDSHAKE_MS);
        ws.once("close", () => {
          clearTimeout(timer);
          resolve();
        });
        if (ws.readyState === WebSocket.OPEN) ws.close(1000, "client closing");
        else ws.terminate();
      });
    }
    this.ws = undefined;
    this.finish(undefined);
    this.flushFrames(); // anything the socket could not take goes over HTTP
    await Promise.all(this.httpSettles);
  }

  private fail(error: TablemqError): void {
    this.fatalError = error;
    this.buffer = [];
    for (const w of this.waiters.splice(0)) {
      this.fatalReported = true;
      w.reject(error);
    }
    this.emit("error", error, { fatal: true });
    this.finish(error);
    this.flushFrames();
  }

  private finish(error: TablemqError | undefined): void {
    this.state = "closed";
    for (const w of this.doneWaiters.splice(0)) (error ? w.reject(error) : w.resolve());
    this.emit("close", error ? { error } : {});
  }
}

/** An upgrade refused with a 4xx will be refused again (except timeouts and overload): do not retry. */
export function isPermanentStatus(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 429;
}

function chunk<T>(items: T[], size = MAX_IDS_PER_FRAME): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function rawText(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8");
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString("utf8");
  return data.toString("utf8");
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function describeSocketError(err: Error): string {
  const code = (err as { code?: string }).code;
  return code ? `${code} (${err.message})` : err.message;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
