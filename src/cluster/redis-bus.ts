import { Redis, type RedisOptions } from "ioredis";
import type { Clock, TimerHandle } from "../clock.js";
import type { Logger } from "../logger.js";
import { type BusEvent, encodeEnvelope, parseEnvelope, PendingEvents } from "./bus-events.js";

export type BusRole = "publisher" | "subscriber";
export type BusState = "connecting" | "up" | "down" | "closed";
export type ResyncReason = "overflow" | "reconnected";

export interface BusStatus {
  state: BusState;
  /** When the bus entered this state (epoch ms). */
  since: number;
  /** What made it leave "up" (or never reach it), while it is not up. */
  lastError?: string;
}

/** Live counters (the bus increments them in place). */
export interface BusStats {
  /** Messages Redis accepted, and the events in them. */
  published: number;
  publishedEvents: number;
  /** Messages from peers (not counting our own echoes or malformed ones). */
  received: number;
  ignoredOwn: number;
  malformed: number;
  /** Events not sent: published while the publisher was down, or their message failed. */
  dropped: number;
  /** Times the consumer queue overflowed and was dropped for a resync. */
  overflows: number;
  /** Times a connection came back after it had been lost. */
  reconnects: number;
}

export interface Backoff {
  minMs: number;
  maxMs: number;
}

/** The part of an ioredis client the bus uses; tests pass a fake. */
export interface RedisLike {
  readonly status: string;
  connect(): Promise<void>;
  publish(channel: string, message: string): Promise<unknown>;
  subscribe(channel: string): Promise<unknown>;
  ping(): Promise<unknown>;
  quit(): Promise<unknown>;
  /** Drops the connection; with `reconnect` true ioredis then reconnects (with its retryStrategy). */
  disconnect(reconnect?: boolean): void;
  on(event: "ready" | "close" | "end", listener: () => void): unknown;
  on(event: "error", listener: (err: Error) => void): unknown;
  on(event: "message", listener: (channel: string, message: string) => void): unknown;
}

export interface RedisBusOptions {
  url: string;
  serverId: string;
  /** One per database: busChannelOf(database) (bus-events.ts). */
  channel: string;
  clock: Clock;
  log: Logger;
  /** Events from a peer, in the order they came; called from a later turn of the event loop, never inline. */
  onEvents: (events: BusEvent[], from: string) => void;
  /** Events may have been missed (dropped on overflow, or sent while disconnected): look at every table once. */
  onResync: (why: ResyncReason) => void;
  onStatus?: (status: BusStatus) => void;
  /** Most received events waiting for onEvents (default 1000); past it they are dropped for a resync. */
  maxQueued?: number;
  /** Publishes after the first within this window go out together at its end (default 2 ms). */
  flushMs?: number;
  /** Interval of the health PING (default 1 s); an unanswered PING marks the bus down. */
  pingMs?: number;
  /** How long a PING may take (default pingMs). */
  pingTimeoutMs?: number;
  /** open() resolves after this long even when Redis is not reachable (default 2 s). */
  openWaitMs?: number;
  /** Reconnect delays (default 100 ms doubling up to 1 s: an attempt a second costs little, and wake-ups come back within a second of Redis). */
  backoff?: Backoff;
  /** Jitter of the reconnect delays (default Math.random). */
  random?: () => number;
  /** Makes a connection (default: an ioredis client with ioredisOptions). */
  connect?: (url: string, role: BusRole) => RedisLike;
}

export const DEFAULT_BACKOFF: Backoff = { minMs: 100, maxMs: 1_000 };
/** A reconnect delay is shortened by up to this share at random, so nodes do not reconnect in step. */
const RECONNECT_JITTER = 0.2;
const CONNECT_TIMEOUT_MS = 2_000;
const KEEPALIVE_MS = 10_000;
/** Events per message at most: a window that merged more sends several. */
const MAX_EVENTS_PER_MESSAGE = 500;
/** Publishes waiting for Redis's answer at most: a connection that takes them and answers none is stuck. */
const MAX_IN_FLIGHT = 1_000;
/** PINGs unanswered in a row after which both connections are dropped and made again (a half-open socket). */
const STUCK_PINGS = 3;
/** How long close() waits for the last publish and for QUIT. */
const CLOSE_WAIT_MS = 1_000;

/**
 * Delay before reconnect attempt `attempt` (1, 2, ...): minMs doubling with each attempt, capped at maxMs,
 * shortened at random by up to 20% (`random` in [0, 1)). Pure, so ioredis's retryStrategy and the tests agree.
 */
export function reconnectDelayMs(attempt: number, backoff: Backoff, random: () => number = Math.random): number {
  const doublings = Math.max(0, Math.floor(attempt) - 1);
  const delay = Math.min(backoff.maxMs, backoff.minMs * 2 ** Math.min(doublings, 60));
  return Math.round(delay * (1 - RECONNECT_JITTER * random()));
}

/**
 * The ioredis settings of both connections: connect when told (open), reconnect forever with our backoff,
 * fail a command at once while disconnected rather than queue it (no unbounded buffer; a publish while down
 * is dropped), and let the bus subscribe again itself on every "ready" (so it knows when that is done).
 */
export function ioredisOptions(backoff: Backoff, random: () => number = Math.random): RedisOptions {
  return {
    lazyConnect: true,
    retryStrategy: (attempt: number) => reconnectDelayMs(attempt, backoff, random),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    autoResubscribe: false,
    connectTimeout: CONNECT_TIMEOUT_MS,
    keepAlive: KEEPALIVE_MS,
  };
}

/**
 * RedisBus lets the tablemq nodes of one database tell each other what changed (GitHub issue 25): rows due
 * in a table, a table created/altered/dropped, webhooks reconfigured. It is a hint channel over Redis
 * pub/sub; a node that misses events falls back on polling, so the bus trades completeness for bounded
 * memory everywhere and tells the wiring when it may have missed something (onResync).
 *
 * Two connections are the whole pool the concurrency needs. Publishes go out on one connection, pipelined:
 * ioredis writes each command without waiting for the previous answer, so one socket carries any rate we
 * produce (and coalescing caps it at one message per flushMs anyway). A connection in subscribe mode can
 * do nothing but (un)subscribe and PING, so receiving needs a second one. More connections would only add
 * reconnects to watch.
 *
 * Publishing never blocks or throws. The first event goes out at once (leading edge); events in the next
 * flushMs are merged (PendingEvents) and sent as one message when it ends, which opens another window.
 * While the publisher is not ready, events are dropped and counted: ioredis's offline queue is off.
 *
 * Receiving: a message from our own serverId (Redis echoes to every subscriber) is ignored; a malformed one
 * is counted and dropped; the others are queued and handed to onEvents from a setImmediate. The queue holds
 * at most maxQueued events: past that it is emptied, and messages are dropped until onResync("overflow")
 * has run. Pub/sub keeps nothing for a subscriber that is away, so after the subscriber comes back (and has
 * subscribed again) onResync("reconnected") runs too; the wiring looks at every table once.
 *
 * Health: up means both connections are ready, the channel is subscribed and the last PING round (both
 * connections, every pingMs, on the injected clock) was answered in time. Any close, error or late PING
 * makes it down; every change goes to onStatus. Reconnecting is ioredis's, with our capped backoff; after
 * STUCK_PINGS late rounds in a row the bus drops both connections itself (ioredis would wait for TCP).
 */
export class RedisBus {
  readonly channel: string;
  readonly stats: BusStats = {
    published: 0,
    publishedEvents: 0,
    received: 0,
    ignoredOwn: 0,
    malformed: 0,
    dropped: 0,
    overflows: 0,
    reconnects: 0,
  };

  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly maxQueued: number;
  private readonly flushMs: number;
  private readonly pingMs: number;
  private readonly pingTimeoutMs: number;
  private readonly backoff: Backoff;
  private readonly random: () => number;
  private readonly makeConnection: (url: string, role: BusRole) => RedisLike;

  private pub: RedisLike | undefined;
  private sub: RedisLike | undefined;
  private pubReady = false;
  private subscribed = false;
  private pingOk = false;
  /** Set at the first failure: from then on "not up" is "down", not "connecting". */
  private failed = false;
  private closed = false;
  private lastError: string | undefined;
  private current: { state: BusState; since: number };
  private opening: Promise<void> | undefined;
  /** open() has resolved: from then on, a new subscription means events may have been missed. */
  private opened = false;
  private closing: Promise<void> | undefined;
  private upWaiters: Array<() => void> = [];
  private readonly wasReady = { publisher: false, subscriber: false };
  /** Guards subscribe answers: one from before the last close is stale. */
  private subscribeRound = 0;
  private readonly restarts = new Map<BusRole, { timer: TimerHandle | undefined; attempts: number }>();

  private readonly pending = new PendingEvents();
  /** The coalescing window: open while this timer runs. */
  private window: TimerHandle | undefined;
  private inFlight = 0;

  private inbox: Array<{ events: BusEvent[]; from: string }> = [];
  private inboxEvents = 0;
  private resync: ResyncReason | undefined;
  private drainScheduled = false;

  private pingTimer: TimerHandle | undefined;
  private pingDeadline: TimerHandle | undefined;
  /** Guards PING answers: one from a round that timed out or was cut short is ignored. */
  private pingRound = 0;
  private pingInFlight = false;
  private latePings = 0;

  constructor(private readonly opts: RedisBusOptions) {
    this.channel = opts.channel;
    this.clock = opts.clock;
    this.log = opts.log;
    this.maxQueued = opts.maxQueued ?? 1_000;
    this.flushMs = opts.flushMs ?? 2;
    this.pingMs = opts.pingMs ?? 1_000;
    this.pingTimeoutMs = opts.pingTimeoutMs ?? this.pingMs;
    this.backoff = opts.backoff ?? DEFAULT_BACKOFF;
    this.random = opts.random ?? Math.random;
    this.makeConnection = opts.connect ?? ((url) => new Redis(url, ioredisOptions(this.backoff, this.random)));
    this.current = { state: "connecting", since: this.clock.now() };
  }

  status(): BusStatus {
    const { state, since } = this.current;
    return this.lastError !== undefined && state !== "up" && state !== "closed"
      ? { state, since, lastError: this.lastError }
      : { state, since };
  }

  /**
   * Connects both connections; resolves once the bus is up, or after openWaitMs with the bus down (it keeps
   * reconnecting). Never rejects.
   */
  open(): Promise<void> {
    this.opening ??= this.start();
    return this.opening;
  }

  /** Sends `event` to the peers, merged with others of the same moment. Never waits, never throws. */
  publish(event: BusEvent): void {
    if (this.closed || !this.pubReady) {
      if (this.opening && !this.closed) this.stats.dropped++;
      return;
    }
    this.pending.add(event);
    if (this.window === undefined) this.flushWindow();
  }

  /** Sends a pending publish (best effort, bounded), closes both connections and stops every timer. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async start(): Promise<void> {
    if (this.closed) return;
    try {
      this.pub = this.attach("publisher");
      this.sub = this.attach("subscriber");
    } catch (err) {
      // A URL the client refuses: nothing to retry. The bus stays down; the wiring polls.
      this.log.error({ err }, "redis bus cannot make its connections");
      this.noteError(this.pub ? "subscriber" : "publisher", err);
      this.opened = true;
      return;
    }
    this.connect(this.pub);
    this.connect(this.sub);
    await new Promise<void>((resolve) => {
      if (this.current.state === "up") return resolve();
      const timer = this.clock.setTimeout(resolve, this.opts.openWaitMs ?? 2_000);
      this.upWaiters.push(() => {
        this.clock.clearTimeout(timer);
        resolve();
      });
    });
    this.opened = true;
    if (this.closed || this.current.state === "up") return;
    this.failed = true;
    this.lastError ??= "Redis did not answer";
    this.evaluate();
  }

  private attach(role: BusRole): RedisLike {
    const conn = this.makeConnection(this.opts.url, role);
    conn.on("error", (err) => this.noteError(role, err));
    conn.on("close", () => this.onClose(role));
    conn.on("end", () => this.onEnd(role, conn));
    conn.on("ready", () => (role === "publisher" ? this.onPublisherReady() : this.onSubscriberReady(conn)));
    if (role === "subscriber") conn.on("message", (channel, message) => this.onMessage(channel, message));
    return conn;
  }

  private connect(conn: RedisLike): void {
    // A failed connect is reported through the "error" and "close" events too; ioredis then retries.
    conn.connect().catch(() => {});
  }

  private onPublisherReady(): void {
    if (this.closed) return;
    this.cameBack("publisher");
    this.pubReady = true;
    this.ping();
  }

  private onSubscriberReady(sub: RedisLike): void {
    if (this.closed) return;
    this.cameBack("subscriber");
    const round = ++this.subscribeRound;
    void sub.subscribe(this.channel).then(
      () => {
        if (round !== this.subscribeRound || this.closed) return;
        this.subscribed = true;
        if (this.opened) this.requestResync("reconnected");
        this.ping();
      },
      (err: unknown) => {
        if (round !== this.subscribeRound || this.closed) return;
        this.noteError("subscriber", err);
        sub.disconnect(true); // try again after the backoff
      },
    );
  }

  private cameBack(role: BusRole): void {
    const restart = this.restarts.get(role);
    if (restart) restart.attempts = 0;
    if (this.wasReady[role]) this.stats.reconnects++;
    this.wasReady[role] = true;
  }

  private onClose(role: BusRole): void {
    if (this.closed) return;
    if (role === "publisher") this.pubReady = false;
    else {
      this.subscribed = false;
      this.subscribeRound++;
    }
    this.lastError ??= `${role} connection closed`;
    this.stopPingRound();
    this.pingOk = false;
    this.failed = true;
    this.evaluate();
  }

  /** ioredis gave up on a connection (it does only when it cannot even start one): try again ourselves. */
  private onEnd(role: BusRole, conn: RedisLike): void {
    if (this.closed) return;
    const restart = this.restarts.get(role) ?? { timer: undefined, attempts: 0 };
    this.restarts.set(role, restart);
    if (restart.timer !== undefined) return;
    restart.timer = this.clock.setTimeout(
      () => {
        restart.timer = undefined;
        if (!this.closed) this.connect(conn);
      },
      reconnectDelayMs(++restart.attempts, this.backoff, this.random),
    );
  }

  private noteError(role: BusRole, err: unknown): void {
    if (this.closed) return;
    const message = `${role}: ${err instanceof Error ? err.message : String(err)}`;
    if (message !== this.lastError) this.log.debug({ err, role }, "redis bus connection error");
    this.lastError = message;
    this.failed = true;
    this.evaluate();
  }

  private evaluate(): void {
    const next: BusState = this.closed
      ? "closed"
      : this.pubReady && this.subscribed && this.pingOk
        ? "up"
        : this.failed
          ? "down"
          : "connecting";
    if (next === "up") for (const wake of this.upWaiters.splice(0)) wake();
    if (next === this.current.state) return;
    // The error that made it down is cleared when it comes up (an error while up is followed by a close).
    if (next === "up") this.lastError = undefined;
    this.current = { state: next, since: this.clock.now() };
    const status = this.status();
    if (next === "down") this.log.warn({ channel: this.channel, lastError: status.lastError }, "redis bus down");
    else this.log.info({ channel: this.channel }, `redis bus ${next}`);
    try {
      this.opts.onStatus?.(status);
    } catch (err) {
      this.log.error({ err }, "redis bus onStatus failed");
    }
  }

  // Health: one PING round at a time, on both connections, every pingMs while both are ready. A connection
  // that comes back starts a round at once (up needs a fresh answer); while one is not ready nothing runs.

  /**
   * Starts a PING round now, unless one is running (it decides) or a connection is not ready (its "ready"
   * calls this again).
   */
  private ping(): void {
    const { pub, sub } = this;
    if (this.closed || this.pingInFlight || !pub || !sub || !this.pubReady || !this.subscribed) return;
    if (this.pingTimer !== undefined) this.clock.clearTimeout(this.pingTimer);
    this.pingTimer = undefined;
    const round = ++this.pingRound;
    this.pingInFlight = true;
    this.pingDeadline = this.clock.setTimeout(
      () => this.pingDone(round, `no answer to PING in ${this.pingTimeoutMs} ms`, true),
      this.pingTimeoutMs,
    );
    void Promise.all([pub.ping(), sub.ping()]).then(
      () => this.pingDone(round, undefined, false),
      (err: unknown) => this.pingDone(round, `PING failed: ${err instanceof Error ? err.message : String(err)}`, false),
    );
  }

  private pingDone(round: number, error: string | undefined, timedOut: boolean): void {
    if (round !== this.pingRound || this.closed) return;
    this.stopPingRound();
    this.pingOk = error === undefined;
    if (error !== undefined) {
      this.lastError = error;
      this.failed = true;
    }
    this.latePings = timedOut ? this.latePings + 1 : 0;
    this.evaluate();
    if (this.latePings >= STUCK_PINGS) {
      // An unanswered PING (not a failed one: ioredis reconnects by itself then) may be a half-open socket.
      this.latePings = 0;
      this.log.warn({ channel: this.channel }, "redis bus connections do not answer PING: reconnecting");
      this.pub?.disconnect(true);
      this.sub?.disconnect(true);
    }
    this.pingTimer = this.clock.setTimeout(() => {
      this.pingTimer = undefined;
      this.ping();
    }, this.pingMs);
  }

  /** Ends the running round, if any: its answer will be ignored. */
  private stopPingRound(): void {
    this.pingRound++;
    this.pingInFlight = false;
    if (this.pingDeadline !== undefined) this.clock.clearTimeout(this.pingDeadline);
    this.pingDeadline = undefined;
  }

  // Publishing.

  /** Sends what is pending (if anything) and opens the next window; with nothing pending the window closes. */
  private flushWindow(): void {
    this.window = undefined;
    const events = this.pending.take();
    if (events.length === 0) return;
    void this.send(events);
    this.window = this.clock.setTimeout(() => this.flushWindow(), this.flushMs);
  }

  private async send(events: BusEvent[]): Promise<void> {
    const sent: Array<Promise<void>> = [];
    for (let i = 0; i < events.length; i += MAX_EVENTS_PER_MESSAGE) {
      const chunk = events.slice(i, i + MAX_EVENTS_PER_MESSAGE);
      const pub = this.pub;
      if (!pub || !this.pubReady || this.inFlight >= MAX_IN_FLIGHT) {
        this.stats.dropped += chunk.length;
        continue;
      }
      this.inFlight++;
      sent.push(
        pub.publish(this.channel, encodeEnvelope(this.opts.serverId, chunk)).then(
          () => {
            this.inFlight--;
            this.stats.published++;
            this.stats.publishedEvents += chunk.length;
          },
          (err: unknown) => {
            this.inFlight--;
            this.stats.dropped += chunk.length;
            this.log.debug({ err }, "redis bus publish failed");
          },
        ),
      );
    }
    await Promise.all(sent);
  }

  // Receiving.

  private onMessage(channel: string, message: string): void {
    if (this.closed || channel !== this.channel) return;
    const envelope = parseEnvelope(message);
    if (!envelope) {
      this.stats.malformed++;
      this.log.debug({ channel, chars: message.length }, "redis bus dropped a malformed message");
      return;
    }
    if (envelope.from === this.opts.serverId) {
      this.stats.ignoredOwn++;
      return;
    }
    this.stats.received++;
    const count = envelope.events.length;
    // Dropped while an overflow's resync is pending: the resync runs after this message came, so covers it.
    if (count === 0 || this.resync === "overflow") return;
    if (this.inboxEvents + count > this.maxQueued) {
      this.inbox = [];
      this.inboxEvents = 0;
      this.stats.overflows++;
      this.log.warn({ channel, maxQueued: this.maxQueued }, "redis bus consumer queue overflowed: resyncing");
      this.requestResync("overflow");
      return;
    }
    this.inbox.push({ events: envelope.events, from: envelope.from });
    this.inboxEvents += count;
    this.scheduleDrain();
  }

  private requestResync(why: ResyncReason): void {
    // An overflow's resync covers a reconnect's and vice versa (both look at every table); it runs first.
    if (this.resync === undefined || why === "overflow") this.resync = why;
    this.scheduleDrain();
  }

  private scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    setImmediate(() => this.drain());
  }

  private drain(): void {
    this.drainScheduled = false;
    if (this.closed) return;
    const why = this.resync;
    const batch = this.inbox;
    this.resync = undefined;
    this.inbox = [];
    this.inboxEvents = 0;
    if (why !== undefined) this.deliver(() => this.opts.onResync(why));
    for (const { events, from } of batch) this.deliver(() => this.opts.onEvents(events, from));
  }

  private deliver(call: () => void): void {
    try {
      call();
    } catch (err) {
      this.log.error({ err }, "redis bus consumer failed");
    }
  }

  // Closing.

  private async shutdown(): Promise<void> {
    if (this.window !== undefined) this.clock.clearTimeout(this.window);
    this.window = undefined;
    const last = this.pending.take();
    const flushed = last.length > 0 ? this.send(last) : Promise.resolve();
    this.closed = true;
    if (this.pingTimer !== undefined) this.clock.clearTimeout(this.pingTimer);
    this.pingTimer = undefined;
    this.stopPingRound();
    for (const restart of this.restarts.values()) if (restart.timer !== undefined) this.clock.clearTimeout(restart.timer);
    this.inbox = [];
    this.inboxEvents = 0;
    this.resync = undefined;
    for (const wake of this.upWaiters.splice(0)) wake();
    this.evaluate();
    await this.bounded(flushed);
    await Promise.all([this.pub, this.sub].map((conn) => conn && this.quit(conn)));
  }

  private async quit(conn: RedisLike): Promise<void> {
    if (conn.status === "ready") await this.bounded(conn.quit());
    conn.disconnect();
  }

  /** Waits for `work` at most CLOSE_WAIT_MS; its failure is ignored. */
  private async bounded(work: Promise<unknown>): Promise<void> {
    let timer: TimerHandle | undefined;
    await Promise.race([work.catch(() => {}), new Promise<void>((resolve) => (timer = this.clock.setTimeout(resolve, CLOSE_WAIT_MS)))]);
    if (timer !== undefined) this.clock.clearTimeout(timer);
  }
}
