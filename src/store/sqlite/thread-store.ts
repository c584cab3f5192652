/**
 * The embedded store on a worker thread of its own: the server's MessageStore and WebhookStore, each call
 * posted to the worker (thread.ts), which runs it on SqliteStore and posts the answer back. better-sqlite3 is
 * synchronous, and a commit with synchronous=FULL waits for an fsync: on the server's thread every statement
 * would hold the event loop (timers, sockets, every other request) for as long as it runs. Here they hold
 * only the worker. The price: a message each way per call, with its arguments and answer cloned.
 */
import { Worker } from "node:worker_threads";
import { MAX_MESSAGE_ID } from "../../ids.js";
import type { ClaimRow, Delivery, NewMessage } from "../../model/messages.js";
import type { TableOptions } from "../../options.js";
import type {
  BackoffSpec,
  BrowsedMessage,
  BrowsePage,
  BrowseQuery,
  DeadLetterPage,
  DeliveryChange,
  DiscoveredTable,
  DueRows,
  FencedResult,
  InsertResult,
  MessageStore,
  RedriveResult,
  SettleGroup,
  SweepQuery,
  SweepResult,
  TableStats,
  WebhookConfig,
  WebhookStore,
} from "../types.js";
import { type Answer, type Ready, uncrossError } from "./thread-protocol.js";
import type { StatementTimes } from "./timing.js";

/** The worker's module: its TypeScript source when this one runs from source, else the built file. */
const FROM_SOURCE = import.meta.url.endsWith(".ts");
const WORKER = new URL(FROM_SOURCE ? "./thread.ts" : "./thread.js", import.meta.url);

/**
 * A worker on WORKER. From source it needs tsx's loader, which a thread does not inherit (not even from
 * `node --import tsx`, on Node 20): a small script registers it in the thread first, then loads the module.
 */
function startWorker(workerData: unknown): Worker {
  if (!FROM_SOURCE) return new Worker(WORKER, { workerData });
  const tsx = import.meta.resolve("tsx/esm/api");
  const boot = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(WORKER.href)}); })`;
  return new Worker(boot, { eval: true, workerData });
}

export class SqliteThreadStore implements MessageStore, WebhookStore {
  private next = 0;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();
  private exited: Error | undefined;

  private constructor(
    private readonly worker: Worker,
    /** The file, resolved. */
    readonly path: string,
  ) {
    worker.on("message", (answer: Answer) => {
      const call = this.pending.get(answer.id);
      if (!call) return;
      this.pending.delete(answer.id);
      if ("error" in answer) call.reject(uncrossError(answer.error));
      else call.resolve(answer.value);
    });
    const fail = (err: Error) => {
      this.exited = err;
      for (const call of this.pending.values()) call.reject(err);
      this.pending.clear();
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`the SQLite worker thread exited (${code})`)));
  }

  /** Starts the worker and opens the file there; rejects with the reason when it cannot (e.g. another process holds it). */
  static async open(path: string): Promise<SqliteThreadStore> {
    const worker = startWorker({ path });
    let onError: (err: Error) => void = () => {};
    let onExit: (code: number) => void = () => {};
    const ready = await new Promise<Ready>((resolve, reject) => {
      onError = reject;
      onExit = (code) => reject(new Error(`the SQLite worker thread exited (${code}) before it opened ${path}`));
      worker.once("message", resolve).once("error", onError).once("exit", onExit);
    }).finally(() => worker.off("error", onError).off("exit", onExit));
    if (!ready.ready) {
      await worker.terminate();
      throw uncrossError(ready.error);
    }
    return new SqliteThreadStore(worker, ready.path);
  }

  private call<T>(method: string, ...args: unknown[]): Promise<T> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, method, args });
    });
  }

  /** The worker's statement times since the last take (its longest is reset: a window per take). */
  takeStatementTimes(): Promise<StatementTimes> {
    return this.call("takeStatementTimes");
  }

  discoverTables(): Promise<DiscoveredTable[]> {
    return this.call("discoverTables");
  }
  createTable(table: string, options: TableOptions): Promise<boolean> {
    return this.call("createTable", table, options);
  }
  alterTableOptions(table: string, options: TableOptions): Promise<void> {
    return this.call("alterTableOptions", table, options);
  }
  dropTable(table: string): Promise<boolean> {
    return this.call("dropTable", table);
  }
  describeTable(table: string, nowMs: number): Promise<TableStats> {
    return this.call("describeTable", table, nowMs);
  }
  describeTables(tables: readonly string[], nowMs: number): Promise<Map<string, TableStats & { dead: number }>> {
    return this.call("describeTables", tables, nowMs);
  }

  sweep(queries: readonly SweepQuery[], nowMs: number): Promise<Map<string, SweepResult>> {
    return this.call("sweep", queries, nowMs);
  }
  maxMessageId(): bigint {
    return MAX_MESSAGE_ID;
  }
  insertMessages(table: string, rows: NewMessage[]): Promise<InsertResult> {
    return this.call("insertMessages", table, rows);
  }
  async readDue(table: string, nowMs: number, limit: number, maxBytes?: number): Promise<DueRows> {
    // `cut` is a property of the array: a clone drops it, so it crosses beside the rows.
    const { rows, cut } = await this.call<{ rows: DueRows; cut?: boolean }>("readDueCrossing", table, nowMs, limit, maxBytes);
    if (cut) rows.cut = true;
    return rows;
  }
  claim(table: string, rows: ClaimRow[], nowMs: number, spec: BackoffSpec, nonceNs: number): Promise<string[]> {
    return this.call("claim", table, rows, nowMs, spec, nonceNs);
  }
  reschedule(table: string, ids: string[], nowMs: number, delayMs: number): Promise<number> {
    return this.call("reschedule", table, ids, nowMs, delayMs);
  }
  ack(table: string, ids: string[], nowMs: number): Promise<number> {
    return this.call("ack", table, ids, nowMs);
  }
  settleGroups(table: string, groups: SettleGroup[]): Promise<number[]> {
    return this.call("settleGroups", table, groups);
  }
  updateDeliveries(table: string, deliveries: Delivery[], nowMs: number, change: DeliveryChange): Promise<FencedResult> {
    return this.call("updateDeliveries", table, deliveries, nowMs, change);
  }
  deadLetter(table: string, ids: string[], minEpoch: number, reason: string, nowMs: number): Promise<string[]> {
    return this.call("deadLetter", table, ids, minEpoch, reason, nowMs);
  }
  deadLetterDeliveries(table: string, deliveries: Delivery[], reason: string, nowMs: number): Promise<FencedResult> {
    return this.call("deadLetterDeliveries", table, deliveries, reason, nowMs);
  }
  listDead(table: string, limit: number, cursor?: string): Promise<DeadLetterPage> {
    return this.call("listDead", table, limit, cursor);
  }
  countDead(table: string): Promise<number> {
    return this.call("countDead", table);
  }
  redrive(table: string, ids: string[] | undefined, nowMs: number, limit: number): Promise<RedriveResult> {
    return this.call("redrive", table, ids, nowMs, limit);
  }
  deleteUnacked(table: string, ids: string[] | undefined, limit: number): Promise<number> {
    return this.call("deleteUnacked", table, ids, limit);
  }
  purge(table: string, cutoffMs: number, limit: number): Promise<number> {
    return this.call("purge", table, cutoffMs, limit);
  }
  oldestAck(table: string): Promise<number | undefined> {
    return this.call("oldestAck", table);
  }
  dueTimes(table: string, afterMs: number, limit: number, ids?: string[]): Promise<number[]> {
    return this.call("dueTimes", table, afterMs, limit, ids);
  }
  browse(table: string, query: BrowseQuery, nowMs: number): Promise<BrowsePage> {
    return this.call("browse", table, query, nowMs);
  }
  getMessage(table: string, id: string, nowMs: number): Promise<BrowsedMessage | undefined> {
    return this.call("getMessage", table, id, nowMs);
  }
  listWebhooks(): Promise<WebhookConfig[]> {
    return this.call("listWebhooks");
  }
  putWebhook(config: WebhookConfig): Promise<boolean> {
    return this.call("putWebhook", config);
  }
  deleteWebhook(table: string, name: string): Promise<boolean> {
    return this.call("deleteWebhook", table, name);
  }
  deleteWebhooksOfMissingTables(table?: string): Promise<number> {
    return this.call("deleteWebhooksOfMissingTables", table);
  }
  async ping(): Promise<boolean> {
    try {
      return await this.call<boolean>("ping");
    } catch {
      return false;
    }
  }
  async close(): Promise<void> {
    if (this.exited) return;
    try {
      await this.call("close");
    } finally {
      await this.worker.terminate();
    }
  }
}
