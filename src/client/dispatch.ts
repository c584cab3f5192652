/**
 * Hands a subscription's messages to the application: to the iterator's `next()` calls, or to the
 * `onMessage` handler, `concurrency` at a time. A handler that resolves acks its message (unless it was
 * settled already); one that throws postpones it with the table's backoff and reports the error.
 *
 * The buffer needs no bound of its own: the server stops sending once `maxInFlight` messages are unacked.
 */
import type { Message, ReceivedMessage } from "./message.js";

export interface DispatchOptions<T> {
  /** Callback mode when set. */
  onMessage: ((message: Message<T>) => void | Promise<void>) | undefined;
  /** Handlers running at once (callback mode). */
  concurrency: number;
  /** False once the subscription is closing or closed: no handler starts, the iterator ends. */
  active(): boolean;
  /** A handler threw (its message has been postponed). */
  handlerFailed(error: Error, message: Message<T>): void;
  /** Starts the message's heartbeat while its handler runs; returns the function that stops it. */
  heartbeat?: (message: ReceivedMessage<T>) => () => void;
}

interface Waiter<T> {
  resolve(result: IteratorResult<Message<T>>): void;
  reject(error: unknown): void;
}

export class Dispatcher<T> {
  private buffer: Array<ReceivedMessage<T>> = [];
  private readonly waiters: Array<Waiter<T>> = [];
  private fatalError: Error | undefined;
  private fatalReported = false;
  private running = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly opts: DispatchOptions<T>) {}

  get callbackMode(): boolean {
    return this.opts.onMessage !== undefined;
  }

  /** Messages arrived. */
  add(messages: ReadonlyArray<ReceivedMessage<T>>): void {
    this.buffer.push(...messages);
    if (this.opts.onMessage) {
      this.pump();
      return;
    }
    while (this.waiters.length > 0 && this.buffer.length > 0) {
      this.waiters.shift()!.resolve({ done: false, value: this.buffer.shift()! });
    }
  }

  /** Not yet handed out: their delivery belonged to a dead connection, and the server delivers them again. */
  dropGeneration(generation: number): void {
    this.buffer = this.buffer.filter((m) => m.generation !== generation);
  }

  /** Empties the buffer; returns what was never handed out. */
  release(): Array<ReceivedMessage<T>> {
    return this.buffer.splice(0);
  }

  /** The subscription is closing: pending `next()` calls finish. */
  end(): void {
    for (const w of this.waiters.splice(0)) w.resolve({ done: true, value: undefined });
  }

  /** The subscription failed for good: pending `next()` calls reject; a later one rejects once, then ends. */
  fail(error: Error): void {
    this.fatalError = error;
    this.buffer = [];
    for (const w of this.waiters.splice(0)) {
      this.fatalReported = true;
      w.reject(error);
    }
  }

  next(): Promise<IteratorResult<Message<T>>> {
    const message = this.buffer.shift();
    if (message) return Promise.resolve({ done: false, value: message });
    if (!this.opts.active()) return this.endResult();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Resolves when no handler runs. */
  whenIdle(): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
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
    while (this.running < this.opts.concurrency && this.buffer.length > 0 && this.opts.active()) {
      void this.handle(this.buffer.shift()!);
    }
  }

  private async handle(message: ReceivedMessage<T>): Promise<void> {
    this.running++;
    const stopHeartbeat = this.opts.heartbeat?.(message);
    try {
      await this.opts.onMessage!(message);
      stopHeartbeat?.();
      message.ack();
    } catch (err) {
      stopHeartbeat?.();
      message.postpone();
      this.opts.handlerFailed(err instanceof Error ? err : new Error(String(err)), message);
    } finally {
      this.running--;
      if (this.running === 0) for (const w of this.idleWaiters.splice(0)) w();
      this.pump();
    }
  }
}
