/**
 * Telling the server, after the application's commit, what `tablemq/sql` wrote or changed: the rows an
 * enqueue made reach a subscriber in milliseconds instead of at the next poll (pollIntervalMs), delayed
 * ones get their timers, and messages acked or postponed there are dropped from the servers' caches.
 *
 * Two ways: `HttpNotifier` sends `POST /v1/tables/{table}/wake` to a server (the `publish` scope), which
 * passes it to the other nodes over their bus; `RedisNotifier` publishes the same wake on the nodes' Redis
 * channel, which every node hears. A notification is a hint: one that fails (or one never sent) costs
 * latency, never a message. So `notify` does not throw: it resolves false and reports the error to
 * `onError`. Notify only after the commit: before it, the server may look and not see the rows yet.
 */
import { hostname } from "node:os";
import { Redis } from "ioredis";
import { TablemqClient, type ClientOptions } from "../client/client.js";
import { busChannelOf, encodeEnvelope, type BusEvent } from "../cluster/bus-events.js";
import { MAX_WAKE_ITEMS, type WakeNote } from "../model/wake.js";
import type { Change } from "./enqueue.js";

export interface Notifier {
  /** Tells the servers about these committed changes; false when it could not (see onError). */
  notify(...changes: Change[]): Promise<boolean>;
  close(): Promise<void>;
}

export interface NotifierOptions {
  /** Called with each failed notification (default: a warning on stderr). */
  onError?: (err: unknown, table: string) => void;
}

const warn = (err: unknown, table: string) =>
  process.emitWarning(`tablemq/sql: could not notify the server about ${table} (its next poll finds the rows): ${String(err)}`);

/** Over HTTP, to one server (or a list of nodes, as the client takes them). */
export class HttpNotifier implements Notifier {
  private readonly client: TablemqClient;

  constructor(
    target: TablemqClient | ClientOptions,
    private readonly options: NotifierOptions = {},
  ) {
    this.client = target instanceof TablemqClient ? target : new TablemqClient(target);
  }

  async notify(...changes: Change[]): Promise<boolean> {
    const results = await Promise.all(
      wakesOf(changes).map(({ table, note }) =>
        this.client.wake(table, note).then(
          () => true,
          (err: unknown) => {
            (this.options.onError ?? warn)(err, table);
            return false;
          },
        ),
      ),
    );
    return results.every(Boolean);
  }

  /** Nothing to let go of: the client holds no connection between requests it would need to end. */
  async close(): Promise<void> {}
}

/** What RedisNotifier needs of a Redis client (an ioredis instance fits). */
export interface RedisPublisher {
  publish(channel: string, message: string): Promise<unknown>;
}

export interface RedisNotifierOptions extends NotifierOptions {
  /** The nodes' Redis (TABLEMQ_REDIS_URL): a URL, or a client of yours (not closed by close()). */
  redis: string | RedisPublisher;
  /** The database the nodes serve (the path of their TABLEMQ_DATABASE_URL). */
  database: string;
}

/** Over the nodes' Redis bus: every node hears it at once. */
export class RedisNotifier implements Notifier {
  private readonly redis: RedisPublisher;
  private readonly owned: Redis | undefined;
  private readonly channel: string;
  private readonly from = `app:${hostname()}:${process.pid}`;

  constructor(private readonly options: RedisNotifierOptions) {
    if (typeof options.redis === "string") {
      this.owned = new Redis(options.redis, { lazyConnect: true, maxRetriesPerRequest: 1 });
      this.redis = this.owned;
    } else {
      this.redis = options.redis;
    }
    this.channel = busChannelOf(options.database);
  }

  async notify(...changes: Change[]): Promise<boolean> {
    const events: BusEvent[] = wakesOf(changes).map(({ table, note }) => ({ kind: "wake", table, ...note }));
    if (events.length === 0) return true;
    try {
      await this.redis.publish(this.channel, encodeEnvelope(this.from, events));
      return true;
    } catch (err) {
      for (const table of new Set(events.map((e) => (e as { table: string }).table))) (this.options.onError ?? warn)(err, table);
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.owned) this.owned.disconnect();
  }
}

/** The changes' wakes, one or more per table, each within MAX_WAKE_ITEMS due times and ids. */
export function wakesOf(changes: readonly Change[]): Array<{ table: string; note: WakeNote }> {
  const byTable = new Map<string, { dueAt: Set<number>; forget: Set<string> }>();
  for (const c of changes) {
    let entry = byTable.get(c.table);
    if (!entry) byTable.set(c.table, (entry = { dueAt: new Set(), forget: new Set() }));
    for (const at of c.wake.dueAt ?? []) entry.dueAt.add(at);
    for (const id of c.wake.forget ?? []) entry.forget.add(id);
  }
  const wakes: Array<{ table: string; note: WakeNote }> = [];
  for (const [table, { dueAt, forget }] of byTable) {
    const times = [...dueAt].sort((a, b) => a - b);
    const ids = [...forget];
    const parts = Math.max(1, Math.ceil(Math.max(times.length, ids.length) / MAX_WAKE_ITEMS));
    for (let p = 0; p < parts; p++) {
      const note: WakeNote = {};
      const someTimes = times.slice(p * MAX_WAKE_ITEMS, (p + 1) * MAX_WAKE_ITEMS);
      const someIds = ids.slice(p * MAX_WAKE_ITEMS, (p + 1) * MAX_WAKE_ITEMS);
      if (someTimes.length > 0) note.dueAt = someTimes;
      if (someIds.length > 0) note.forget = someIds;
      wakes.push({ table, note });
    }
  }
  return wakes;
}
