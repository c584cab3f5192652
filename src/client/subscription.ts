/**
 * A WebSocket subscription to one table (README, "Subscribe").
 *
 * Two ways to consume, chosen by `onMessage`:
 * - iterator mode (no onMessage): `for await (const msg of sub)`; the application acks (`msg.ack()`) or
 *   postpones each message; one it leaves alone is redelivered by the server after the table's ack wait.
 *   Leaving the loop (`break`, `return`, a throw) closes the subscription.
 * - callback mode: `onMessage(msg)` runs for each message, `concurrency` at a time (default 1, in order).
 *   When the handler resolves and the message was neither acked nor postponed, it is acked; when it throws
 *   (or rejects), it is postponed with the table's backoff and the error is reported as an "error" event.
 *   With `autoExtend`, the message's lease is extended while its handler runs (heartbeat.ts).
 *
 * `ack()` and `postpone()` queue a frame; the frames of one tick are sent together (outbox.ts). While the
 * socket is down they wait for the next connection; after the subscription has ended they go over HTTP
 * instead. `flush()` waits until queued frames are handed to the socket. With `fenced`, they name the
 * delivery's receipt instead of the message id, so a consumer whose delivery is stale changes nothing.
 * `msg.extend()`, `msg.fail()` and `msg.ack({ confirm: true })` go over the socket when it is up, else over
 * HTTP, and wait for the answer (answered.ts).
 *
 * The connection is re-established after an unexpected drop (connection.ts), on the next server when the
 * client was given several (servers.ts); acks still queued then go to the new server. Permanent failures
 * end the subscription: an "error" event with `fatal: true`, then "close", the iterator rejects once,
 * `done()` rejects. Messages that arrived but were not yet handed to the application when the socket
 * dropped are dropped from the buffer: their delivery belonged to the dead connection, and the server
 * delivers them again after the ack wait. On `close()` such messages are released at once (postponed with delay 0).
 *
 * The parts: SocketConnection (socket and reconnects), Outbox (acks and postpones), AnsweredRequests
 * (extensions, fails, confirmed acks), Dispatcher (iterator and handlers); this class owns the lifecycle and the events.
 */
import { type ReconnectOptions, resolveReconnect } from "./backoff.js";
import { type ReconnectingInfo, SocketConnection } from "./connection.js";
import { Dispatcher } from "./dispatch.js";
import { Emitter } from "./emitter.js";
import { type Answer, AnsweredRequests } from "./answered.js";
import { type AutoExtendOptions, checkAutoExtend, leaseTimes, startHeartbeat } from "./heartbeat.js";
import { checkWhole, invalidArgument, TablemqError } from "./http.js";
import { type Message, type MessageOwner, ReceivedMessage } from "./message.js";
import { type HttpSettler, Outbox } from "./outbox.js";
import type { ServerList } from "./servers.js";
import type { ExtendResult, Ref, ServerFrame, StaleInfo, SubscribedInfo } from "./types.js";

export type { AckOptions, Message } from "./message.js";
export type { ReconnectingInfo } from "./connection.js";
export type { AutoExtendOptions } from "./heartbeat.js";
export { isPermanentStatus } from "./connection.js";
export type { HttpSettler } from "./outbox.js";

/** The table's ack wait assumed by `autoExtend` before a `subscribed` frame told it (never needed in practice). */
const DEFAULT_ACK_WAIT_MS = 30_000;

export interface SubscribeOptions<T = unknown> {
  /** Unacked messages the server may hand this subscriber; the server's default when absent. */
  maxInFlight?: number;
  /** Reconnect after an unexpected drop (default `{ minDelayMs: 100, maxDelayMs: 10000 }`), or `false`. */
  reconnect?: ReconnectOptions | false;
  /** Callback mode: called per message; acked when it resolves, postponed when it throws. */
  onMessage?: (message: Message<T>) => void | Promise<void>;
  /** Callback mode: handlers running at once; default 1. */
  concurrency?: number;
  /**
   * Reconnect when the socket carries nothing (no ping, no frame) for this long: a dead path behind a proxy
   * that looks open. Default: twice the ping interval the server announces (30 s by default, so 60 s).
   */
  heartbeatTimeoutMs?: number;
  /**
   * Called with every error, as the "error" event. With neither this nor a listener, an error is not
   * dropped: it becomes a process warning, and one that ends the subscription (unless an iterator or
   * `done()` receives it) also sets the process's exit code to 1.
   */
  onError?: (error: Error, context: ErrorContext) => void;
  /**
   * Callback mode: extend each message's lease while its handler runs. `true` extends by the table's ack
   * wait every half ack wait; `{ everyMs, byMs }` sets either. Default off. A stale answer (the message was
   * delivered again meanwhile) stops the heartbeat and emits "stale".
   */
  autoExtend?: boolean | AutoExtendOptions;
  /**
   * Ack and postpone by receipt instead of by id: the server refuses (and reports in a "stale" event) those
   * of a delivery that is no longer current, so a consumer whose lease ran out cannot settle the message
   * someone else now holds. Default off: plain-id acks are the fast path.
   */
  fenced?: boolean;
}

export interface ErrorContext {
  /** True when the error ended the subscription. */
  fatal: boolean;
  /** Set when an onMessage handler, or its heartbeat, failed for this message. */
  messageId?: string;
}

export interface SubscriptionEvents {
  subscribed: [info: SubscribedInfo];
  reconnecting: [info: ReconnectingInfo];
  error: [error: Error, context: ErrorContext];
  /** The server refused receipts as stale: fenced acks or postpones, or a heartbeat's extension. */
  stale: [info: StaleInfo];
  /** Once, when the subscription has ended; `error` is set when a permanent failure ended it. */
  close: [info: { error?: TablemqError }];
}

/**
 * HTTP calls of the client: settlements once the socket is gone, and the answered requests (extensions,
 * fails, confirmed acks) while it is down.
 */
export interface SubscriptionHttp extends HttpSettler {
  extend(receipts: string[], byMs: number): Promise<ExtendResult>;
  release(receipts: string[]): Promise<Answer>;
  fail(receipts: string[], reason: string | undefined): Promise<Answer>;
  /** One ack, by receipt when `fenced`, else by id. */
  confirmAck(key: string, fenced: boolean): Promise<Answer>;
}

/** What close() does with messages the subscription never handled, and how long it waits. */
export interface CloseOptions {
  /**
   * Hand buffered messages back at once, their delivery uncounted (default true); false leaves them to be
   * redelivered after the ack wait, counted.
   */
  release?: boolean;
  /** Most time to wait for running handlers (default: as long as they take). */
  timeoutMs?: number;
}

/** How long close() waits for the server's answer to a pause or a release before going on without it. */
const CLOSE_STEP_MS = 5_000;
/** Most receipts in one release frame or request (the server's default batch limit). */
const RELEASE_PER_FRAME = 1000;

export interface SubscriptionConnection {
  /** The servers' base URLs: the subscription starts on the current one and moves on at each reconnect. */
  servers: ServerList;
  /** The subscribe endpoint's path, query included. */
  path: string;
  headers: Record<string, string>;
  handshakeTimeoutMs: number;
  /** How long an extension over the socket waits for its answer; default 30 s. */
  requestTimeoutMs?: number;
  http: SubscriptionHttp;
}

type Lifecycle = "active" | "closing" | "closed";

export class Subscription<T = unknown> extends Emitter<SubscriptionEvents> implements AsyncIterable<Message<T>> {
  readonly table: string;
  private readonly fenced: boolean;
  private lifecycle: Lifecycle = "active";
  private info: SubscribedInfo | undefined;
  private iterating = false;
  private fatalError: TablemqError | undefined;
  private closing: Promise<void> | undefined;
  private doneWaiters: Array<{ resolve(): void; reject(e: unknown): void }> = [];
  private refs = 0;
  /** Receipts of messages that arrived while closing: handed back, never handed out. */
  private readonly unhandled: string[] = [];
  /** Answers awaited by close(): a `paused` or `released` frame by ref (undefined: none will come). */
  private readonly replies = new Map<Ref, (frame: ServerFrame | undefined) => void>();

  private readonly owner: MessageOwner;
  private readonly outbox: Outbox;
  private readonly answered: AnsweredRequests;
  private readonly dispatcher: Dispatcher<T>;
  private readonly connection: SocketConnection;
  private readonly connectionHttp: SubscriptionHttp;
  private readonly onError: SubscribeOptions<T>["onError"];

  constructor(table: string, connection: SubscriptionConnection, options: SubscribeOptions<T> = {}) {
    super();
    this.table = table;
    this.fenced = options.fenced ?? false;
    this.connectionHttp = connection.http;
    this.onError = options.onError;
    const reconnect = options.reconnect === false ? false : resolveReconnect(options.reconnect ?? {});
    checkWhole("concurrency", options.concurrency, 1);
    const concurrency = options.concurrency ?? 1;
    checkWhole("heartbeatTimeoutMs", options.heartbeatTimeoutMs, 1, true);
    const heartbeatTimeoutMs = options.heartbeatTimeoutMs;
    const autoExtend = checkAutoExtend(options.autoExtend);
    if (autoExtend && !options.onMessage) throw invalidArgument("autoExtend", "needs onMessage: it extends leases while a handler runs");
    const nextRef = () => ++this.refs;

    // The socket's events come later (never during construction), when every part below exists.
    this.connection = new SocketConnection(
      {
        table,
        servers: connection.servers,
        path: connection.path,
        headers: connection.headers,
        handshakeTimeoutMs: connection.handshakeTimeoutMs,
        ...(heartbeatTimeoutMs === undefined ? {} : { heartbeatTimeoutMs }),
      },
      reconnect,
      {
        frame: (frame, generation) => this.onFrame(frame, generation),
        badFrame: (err) => this.reportError(err, { fatal: false }),
        gone: (generation) => {
          this.answered.gone(generation);
          for (const answer of this.replies.values()) answer(undefined); // that socket will not answer
          this.dispatcher.dropGeneration(generation);
        },
        reconnecting: (info) => this.emit("reconnecting", info),
        failed: (err) => this.fail(err),
      },
    );
    this.outbox = new Outbox({
      sink: this.connection,
      ended: () => this.lifecycle === "closed",
      http: connection.http,
      nextRef,
      stale: (info) => this.emit("stale", info),
      error: (err) => this.reportError(err, { fatal: false }),
    });
    this.answered = new AnsweredRequests({ sink: this.connection, nextRef, timeoutMs: connection.requestTimeoutMs ?? 30_000 });
    this.dispatcher = new Dispatcher<T>({
      onMessage: options.onMessage,
      concurrency,
      active: () => this.lifecycle === "active",
      handlerFailed: (err, m) => this.reportError(err, { fatal: false, messageId: m.id }),
      ...(autoExtend ? { heartbeat: (m: ReceivedMessage<T>) => this.heartbeat(m, autoExtend) } : {}),
    });
    this.owner = {
      ack: (m) => this.outbox.ack(this.key(m), this.fenced),
      postpone: (m, delayMs) => this.outbox.postpone(this.key(m), this.fenced, delayMs),
      confirmAck: (m) => {
        const key = this.key(m);
        const frame = this.fenced ? { type: "ack" as const, receipts: [key] } : { type: "ack" as const, ids: [key] };
        return this.answered.send({ frame, key, http: () => connection.http.confirmAck(key, this.fenced) });
      },
      // Always fenced: a consumer whose lease ran out must not dead-letter the message someone else now holds.
      fail: (m, reason) =>
        this.answered.send({
          frame: { type: "fail", receipts: [m.receipt], ...(reason === undefined ? {} : { reason }) },
          key: m.receipt,
          http: () => connection.http.fail([m.receipt], reason),
        }),
      release: (m) =>
        this.answered.send({
          frame: { type: "release", receipts: [m.receipt] },
          key: m.receipt,
          http: () => connection.http.release([m.receipt]),
        }),
      extend: (m, byMs) =>
        this.answered.send({
          frame: { type: "extend", receipts: [m.receipt], byMs },
          key: m.receipt,
          http: async () => {
            const { extended, stale, unchanged } = await connection.http.extend([m.receipt], byMs);
            return { count: extended, stale, unchanged };
          },
        }),
    };
  }

  /** The last `subscribed` frame, once one arrived. */
  get subscribedInfo(): SubscribedInfo | undefined {
    return this.info;
  }

  /**
   * The base URL of the server the subscription is connected to, or will connect to next while it is
   * down (with several servers, it moves to the next at every reconnect).
   */
  get url(): string {
    return this.connection.server;
  }

  /** True while a socket is open and subscribed. */
  get connected(): boolean {
    return this.lifecycle === "active" && this.connection.canSend;
  }

  /** True once the subscription has ended (close() or a permanent failure). */
  get closed(): boolean {
    return this.lifecycle === "closed";
  }

  /**
   * Resolves when the subscription ends through close(); rejects with the error of a permanent failure.
   */
  done(): Promise<void> {
    if (this.lifecycle === "closed") return this.fatalError ? Promise.reject(this.fatalError) : Promise.resolve();
    return new Promise((resolve, reject) => this.doneWaiters.push({ resolve, reject }));
  }

  [Symbol.asyncIterator](): AsyncIterator<Message<T>> {
    if (this.dispatcher.callbackMode) throw new Error("this subscription has an onMessage handler; it cannot also be iterated");
    if (this.iterating) throw new Error("a subscription can be iterated only once");
    this.iterating = true;
    return {
      next: () => this.dispatcher.next(),
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
    this.outbox.flush();
    await this.outbox.drained();
  }

  /**
   * Ends the subscription without a delivery more: the server is asked to send nothing more (a `pause`
   * frame; the socket stays open), the messages never handed out are released (due again at once, their
   * delivery uncounted, so closing uses up no attempt), the iterator finishes, running handlers complete
   * (their acks are sent; `timeoutMs` bounds the wait), and the socket closes. Idempotent: later calls share
   * the first one's options.
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (this.lifecycle === "closed") return Promise.resolve();
    this.closing ??= this.shutDown(options);
    return this.closing;
  }

  private onFrame(frame: ServerFrame, generation: number): void {
    switch (frame.type) {
      case "subscribed": {
        const { type: _type, ...info } = frame;
        this.info = info;
        this.emit("subscribed", info);
        this.outbox.flush();
        break;
      }
      case "messages":
        if (this.lifecycle !== "active") {
          // Arrived while closing (sent before the server took our pause): handed back by close().
          for (const m of frame.messages) this.unhandled.push(m.receipt);
          break;
        }
        this.dispatcher.add(frame.messages.map((m) => new ReceivedMessage<T>(m, generation, this.owner)));
        break;
      case "acked":
        if (!this.answered.reply(frame)) this.outbox.reply(frame);
        break;
      case "postponed":
        this.outbox.reply(frame);
        break;
      case "extended":
      case "failed":
        this.answered.reply(frame);
        break;
      case "released":
        if (!this.answered.reply(frame)) this.replies.get(frame.ref)?.(frame); // msg.release(), or close()'s
        break;
      case "paused":
        if (frame.ref !== undefined) this.replies.get(frame.ref)?.(frame);
        break;
      case "error":
        if (frame.ref !== undefined && this.replies.has(frame.ref)) {
          this.replies.get(frame.ref)!(undefined); // close() goes on over HTTP
          this.reportError(new TablemqError(0, frame.code, frame.message), { fatal: false });
          break;
        }
        if (!this.answered.error(frame)) this.reportError(new TablemqError(0, frame.code, frame.message), { fatal: false });
        break;
      default:
        // A newer server may add frame types (the API allows additions): ignore them.
        break;
    }
  }

  /** What an ack or postpone names: the receipt when fenced, else the id. */
  private key(m: { id: string; receipt: string }): string {
    return this.fenced ? m.receipt : m.id;
  }

  private heartbeat(message: ReceivedMessage<T>, option: AutoExtendOptions): () => void {
    const times = leaseTimes(option, this.info?.ackWaitMs ?? DEFAULT_ACK_WAIT_MS);
    return startHeartbeat(message as ReceivedMessage<unknown>, times, {
      stale: () => this.emit("stale", { kind: "extend", receipts: [message.receipt] }),
      error: (err) => this.reportError(err, { fatal: false, messageId: message.id }),
    });
  }

  private async shutDown(options: CloseOptions): Promise<void> {
    this.lifecycle = "closing";
    this.connection.stop();
    this.dispatcher.end();
    const release = options.release ?? true;
    const buffered = this.dispatcher.release().map((m) => m.receipt); // handed out no more
    // Nothing more from the server before anything goes back: a message released while it could still send
    // would come straight back, and every round would count a delivery (30 went from epoch 0 to 5 in 62 ms).
    this.outbox.flush(); // acks already made go first
    if (this.connection.canSend) await this.request({ type: "pause" });
    const unhandled = [...buffered, ...this.unhandled.splice(0)];
    if (release) await this.release(unhandled);
    const idle = this.dispatcher.whenIdle();
    if (options.timeoutMs === undefined) await idle;
    else await Promise.race([idle, new Promise((r) => setTimeout(r, options.timeoutMs).unref())]);
    this.outbox.flush();
    await this.outbox.drained();
    await this.connection.close();
    this.finish(undefined);
    this.outbox.flush(); // anything the socket could not take goes over HTTP
    await this.outbox.drained();
  }

  /**
   * Sends a pause or release frame and waits for its answer (at most CLOSE_STEP_MS); undefined when the
   * socket could not take it or no answer came.
   */
  private async request(frame: { type: "pause" } | { type: "release"; receipts: string[] }): Promise<ServerFrame | undefined> {
    const ref = ++this.refs;
    let timer: NodeJS.Timeout | undefined;
    const answer = new Promise<ServerFrame | undefined>((resolve) => {
      this.replies.set(ref, resolve);
      timer = setTimeout(() => resolve(undefined), CLOSE_STEP_MS);
    });
    try {
      const taken = await this.connection.send({ ...frame, ref });
      return taken ? await answer : undefined;
    } finally {
      clearTimeout(timer);
      this.replies.delete(ref);
    }
  }

  /** Hands messages back: over the socket while it can carry frames, else over HTTP. */
  private async release(receipts: readonly string[]): Promise<void> {
    for (let at = 0; at < receipts.length; at += RELEASE_PER_FRAME) {
      const part = receipts.slice(at, at + RELEASE_PER_FRAME);
      if (this.connection.canSend && (await this.request({ type: "release", receipts: part }))) continue;
      try {
        await this.connectionHttp.release(part);
      } catch (err) {
        this.reportError(err instanceof TablemqError ? err : new TablemqError(0, "unavailable", String(err)), { fatal: false });
      }
    }
  }

  /**
   * An error goes to the "error" listeners and onError. With neither, it is not dropped (a worker whose
   * table was dropped used to exit 0, silently): a process warning, and for one that ended the
   * subscription with nobody iterating or awaiting done(), exit code 1.
   */
  private reportError(error: Error, context: ErrorContext): void {
    const listened = this.listenerCount("error") > 0;
    if (listened) this.emit("error", error, context);
    if (this.onError) {
      try {
        this.onError(error, context);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    if (listened || this.onError) return;
    if (context.fatal && (this.iterating || this.doneWaiters.length > 0)) return; // they receive it
    const code = error instanceof TablemqError ? `${error.code}: ` : "";
    process.emitWarning(`tablemq: subscription to ${this.table}: ${code}${error.message}`, {
      code: context.fatal ? "TABLEMQ_SUBSCRIPTION_FAILED" : "TABLEMQ_SUBSCRIPTION_ERROR",
    });
    if (context.fatal) process.exitCode = 1;
  }

  private fail(error: TablemqError): void {
    this.fatalError = error;
    this.dispatcher.fail(error);
    this.reportError(error, { fatal: true });
    this.finish(error);
    this.outbox.flush();
  }

  private finish(error: TablemqError | undefined): void {
    this.lifecycle = "closed";
    for (const w of this.doneWaiters.splice(0)) {
      if (error) w.reject(error);
      else w.resolve();
    }
    this.emit("close", error ? { error } : {});
  }
}
