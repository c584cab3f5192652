/**
 * A tiny typed event emitter. Unlike node:events it never throws for an "error" without listeners:
 * subscriptions report errors as events and also through their iterator / `done()`.
 */
type AnyListener = (...args: unknown[]) => void;

export class Emitter<E extends { [K in keyof E]: unknown[] }> {
  private readonly listeners = new Map<keyof E, Set<AnyListener>>();

  on<K extends keyof E>(event: K, listener: (...args: E[K]) => void): this {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as unknown as AnyListener);
    return this;
  }

  once<K extends keyof E>(event: K, listener: (...args: E[K]) => void): this {
    const wrapper = (...args: E[K]) => {
      this.off(event, wrapper);
      listener(...args);
    };
    return this.on(event, wrapper);
  }

  off<K extends keyof E>(event: K, listener: (...args: E[K]) => void): this {
    this.listeners.get(event)?.delete(listener as unknown as AnyListener);
    return this;
  }

  listenerCount<K extends keyof E>(event: K): number {
    return this.listeners.get(event)?.size ?? 0;
  }

  /** Calls each listener; one that throws does not stop the others (its error is rethrown async). */
  protected emit<K extends keyof E>(event: K, ...args: E[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(...(args as unknown[]));
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}
