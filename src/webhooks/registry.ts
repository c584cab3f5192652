import { randomUUID } from "node:crypto";
import { type Clock, systemClock, type TimerHandle } from "../clock.js";
import type { Engine } from "../engine/engine.js";
import { ConflictError, TableNotFoundError, WebhookNotFoundError } from "../errors.js";
import { type Logger, silentLogger } from "../logger.js";
import type { TableHandle } from "../engine/table-handle.js";
import type { WebhookConfig, WebhookStore } from "../store/types.js";
import { WebhookReceiver } from "./receiver.js";
import { DEFAULT_RETRY, type RetryPolicy } from "./recoverer.js";
import { fetchTransport, type Transport } from "./transport.js";
import {
  newCounters,
  type TableAccess,
  type WebhookCounters,
  type WebhookInput,
  type WebhookReport,
  type WebhookStatus,
  type WebhookSummary,
  type WebhookView,
} from "./types.js";

export const DEFAULT_WEBHOOK_BATCH_SIZE = 10;
export const DEFAULT_WEBHOOK_TIMEOUT_MS = 10_000;
/** Webhooks one table may have (each is a receiver of the table). */
export const MAX_WEBHOOKS_PER_TABLE = 100;

export interface WebhookRegistryConfig {
  engine: Engine;
  store: WebhookStore;
  clock?: Clock;
  log?: Logger;
  retry?: RetryPolicy;
  transport?: Transport;
  newDeliveryId?: () => string;
  /** How soon to try again to load the configurations when the database did not answer (default 5 s). */
  reloadMs?: number;
}

const IDLE_STATUS: WebhookStatus = Object.freeze({
  state: "up",
  lastError: null,
  lastErrorAt: null,
  lastDeliveredAt: null,
  failures: 0,
  nextRetryAt: null,
  held: 0,
});

/**
 * The webhooks of every table: their configurations (stored through the WebhookStore, cached here) and one
 * WebhookReceiver per webhook of each table the engine serves. It follows the engine: a table that opens
 * gets receivers for its webhooks, one that closes loses them, and a dropped table's webhooks are deleted.
 *
 * The configurations are loaded at open(); if the database does not answer, loading is retried every
 * reloadMs, and the webhook routes try it again first (503 while it fails). At load, webhooks of tables
 * that no longer exist (dropped while the server was down) are deleted.
 */
export class WebhookRegistry {
  private readonly engine: Engine;
  private readonly store: WebhookStore;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly retry: RetryPolicy;
  private readonly transport: Transport;
  private readonly newDeliveryId: () => string;
  private readonly reloadMs: number;
  /** table → name → configuration. */
  private readonly configs = new Map<string, Map<string, WebhookConfig>>();
  /** table → name → receiver, for tables the engine serves. */
  private readonly receivers = new Map<string, Map<string, WebhookReceiver>>();
  private readonly counters = new Map<string, WebhookCounters>();
  private loaded = false;
  private loading: Promise<void> | undefined;
  private reloadTimer: TimerHandle | undefined;
  private unwatch: (() => void) | undefined;
  private closed = false;

  constructor(config: WebhookRegistryConfig) {
    this.engine = config.engine;
    this.store = config.store;
    this.clock = config.clock ?? systemClock;
    this.log = config.log ?? silentLogger;
    this.retry = { ...(config.retry ?? DEFAULT_RETRY) };
    this.transport = config.transport ?? fetchTransport;
    this.newDeliveryId = config.newDeliveryId ?? randomUUID;
    this.reloadMs = config.reloadMs ?? 5_000;
  }

  /** Follows the engine's tables and loads the configurations (retrying in the background if it cannot). */
  async open(): Promise<void> {
    this.unwatch ??= this.engine.watchTables({
      opened: (table) => this.startTable(table),
      closed: (table, dropped) => void this.tableClosed(table, dropped),
    });
    try {
      await this.ensureLoaded();
    } catch (err) {
      this.log.warn({ err }, "could not load the webhooks; retrying");
      this.scheduleReload();
    }
  }

  /** Stops every receiver: POSTs in flight may finish (and are acked), held messages go back to their tables. */
  async close(): Promise<void> {
    this.closed = true;
    this.unwatch?.();
    if (this.reloadTimer !== undefined) this.clock.clearTimeout(this.reloadTimer);
    const all = [...this.receivers.values()].flatMap((byName) => [...byName.values()]);
    this.receivers.clear();
    await Promise.all(all.map((r) => r.stop(true)));
  }

  /** Creates or replaces a webhook; `created` tells which. */
  async put(table: string, name: string, input: WebhookInput): Promise<{ created: boolean; webhook: WebhookView }> {
    await this.engine.table(table); // 404 for an unknown table
    await this.ensureLoaded();
    const existing = this.configs.get(table)?.get(name);
    if (!existing && (this.configs.get(table)?.size ?? 0) >= MAX_WEBHOOKS_PER_TABLE) {
      throw new ConflictError(`table ${table} has ${MAX_WEBHOOKS_PER_TABLE} webhooks already`);
    }
    const now = this.clock.now();
    const config: WebhookConfig = {
      table,
      name,
      url: input.url,
      batchSize: input.batchSize ?? DEFAULT_WEBHOOK_BATCH_SIZE,
      timeoutMs: input.timeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS,
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
    };
    if (input.secret !== undefined) config.secret = input.secret;
    const created = await this.store.putWebhook(config);
    if (!this.engine.has(table)) {
      // Dropped while we wrote: do not leave a webhook behind for a table of that name made later.
      await this.store.deleteWebhooksOfMissingTables(table);
      throw new TableNotFoundError(table);
    }
    this.remember(config);
    const receiver = this.receivers.get(table)?.get(name);
    if (receiver) receiver.configure(config);
    else this.startReceiver(config);
    return { created, webhook: this.view(config) };
  }

  /** Deletes a webhook; its held messages go back to the table at once. */
  async remove(table: string, name: string): Promise<void> {
    await this.engine.table(table);
    await this.ensureLoaded();
    const deleted = await this.store.deleteWebhook(table, name);
    const known = this.configs.get(table)?.delete(name) ?? false;
    this.counters.delete(key(table, name));
    const receiver = this.receivers.get(table)?.get(name);
    if (receiver) {
      this.receivers.get(table)!.delete(name);
      await receiver.stop(false);
    }
    if (!deleted && !known) throw new WebhookNotFoundError(table, name);
  }

  async list(table: string): Promise<WebhookView[]> {
    await this.engine.table(table);
    await this.ensureLoaded();
    return [...(this.configs.get(table)?.values() ?? [])].sort(byName).map((c) => this.view(c));
  }

  async get(table: string, name: string): Promise<WebhookView> {
    await this.engine.table(table);
    await this.ensureLoaded();
    const config = this.configs.get(table)?.get(name);
    if (!config) throw new WebhookNotFoundError(table, name);
    return this.view(config);
  }

  /** The webhooks' health for a table's description (as loaded; empty before the first load). */
  summaries(table: string): WebhookSummary[] {
    return [...(this.configs.get(table)?.values() ?? [])].sort(byName).map((c) => ({ name: c.name, ...this.statusOf(c) }));
  }

  reports(): WebhookReport[] {
    const out: WebhookReport[] = [];
    for (const [table, byName] of this.configs) {
      for (const config of byName.values()) {
        out.push({ table, name: config.name, counters: this.countersOf(table, config.name), status: this.statusOf(config) });
      }
    }
    return out;
  }

  /** Loads the configurations once; concurrent callers share the attempt, a failed one is tried again. */
  private ensureLoaded(): Promise<void> {
    if (this.loaded) return Promise.resolve();
    this.loading ??= this.load().finally(() => (this.loading = undefined));
    return this.loading;
  }

  private async load(): Promise<void> {
    const pruned = await this.store.deleteWebhooksOfMissingTables();
    if (pruned > 0) this.log.info({ count: pruned }, "deleted the webhooks of tables that no longer exist");
    const stored = await this.store.listWebhooks();
    if (this.closed) return;
    for (const config of stored) {
      const known = this.configs.get(config.table)?.get(config.name);
      if (!known || known.updatedAt < config.updatedAt) this.remember(config);
    }
    this.loaded = true;
    if (this.reloadTimer !== undefined) this.clock.clearTimeout(this.reloadTimer);
    this.reloadTimer = undefined;
    for (const table of this.configs.keys()) if (this.engine.has(table)) this.startTable(table);
  }

  private scheduleReload(): void {
    if (this.closed || this.reloadTimer !== undefined) return;
    this.reloadTimer = this.clock.setTimeout(() => {
      this.reloadTimer = undefined;
      if (this.loaded || this.closed) return;
      this.ensureLoaded().catch((err: unknown) => {
        this.log.warn({ err }, "could not load the webhooks; retrying");
        this.scheduleReload();
      });
    }, this.reloadMs);
  }

  private remember(config: WebhookConfig): void {
    let byName = this.configs.get(config.table);
    if (!byName) this.configs.set(config.table, (byName = new Map()));
    byName.set(config.name, config);
  }

  /** Receivers for every webhook of a table the engine serves (those it lacks). */
  private startTable(table: string): void {
    if (!this.loaded || this.closed) return;
    for (const config of this.configs.get(table)?.values() ?? []) {
      if (!this.receivers.get(table)?.has(config.name)) this.startReceiver(config);
    }
  }

  private startReceiver(config: WebhookConfig): void {
    const { table, name } = config;
    // Through the table's handle, as every other ack: checked, and sent again while its outcome is unknown.
    let handle: TableHandle | undefined;
    const access: TableAccess = {
      ack: (ids) => handle!.ack(ids),
      release: (ids) => handle!.postpone(ids, 0),
      extend: (deliveries, byMs) => handle!.extendDeliveries(deliveries, byMs),
      ackWaitMs: () => handle?.options.ackWaitMs ?? 30_000,
    };
    const receiver = new WebhookReceiver(config, {
      clock: this.clock,
      log: this.log,
      retry: () => this.retry,
      transport: this.transport,
      table: access,
      counters: this.countersOf(table, name),
      newDeliveryId: this.newDeliveryId,
      onClosed: () => this.dropReceiver(table, name, receiver),
    });
    let byName = this.receivers.get(table);
    if (!byName) this.receivers.set(table, (byName = new Map()));
    byName.set(name, receiver);
    void (async () => {
      try {
        handle = await this.engine.table(table);
        receiver.attach(handle.subscribe(receiver));
      } catch (err) {
        this.log.warn({ err, table, webhook: name }, "webhook could not subscribe to its table");
        this.dropReceiver(table, name, receiver);
        void receiver.stop(false);
      }
    })();
  }

  private dropReceiver(table: string, name: string, receiver: WebhookReceiver): void {
    const byName = this.receivers.get(table);
    if (byName?.get(name) === receiver) byName.delete(name);
    if (byName?.size === 0) this.receivers.delete(table);
  }

  /** The manager has ended the receivers' subscriptions; a dropped table's webhooks are deleted too. */
  private async tableClosed(table: string, dropped: boolean): Promise<void> {
    this.receivers.delete(table);
    if (!dropped || !this.configs.has(table)) return;
    try {
      // Deleted only if the table is really gone (one statement checks), so a table the engine lost sight
      // of for a moment keeps its webhooks and gets them back when it reappears.
      if ((await this.store.deleteWebhooksOfMissingTables(table)) > 0 || !(await this.storeHasWebhooksOf(table))) {
        this.forgetTable(table);
      }
    } catch (err) {
      this.log.warn({ err, table }, "could not delete the webhooks of a dropped table; they are deleted at the next start");
    }
  }

  /** Nothing deleted: either the table is there after all, or its webhooks were deleted already. */
  private async storeHasWebhooksOf(table: string): Promise<boolean> {
    return (await this.store.listWebhooks()).some((c) => c.table === table);
  }

  private forgetTable(table: string): void {
    for (const name of this.configs.get(table)?.keys() ?? []) this.counters.delete(key(table, name));
    this.configs.delete(table);
  }

  private countersOf(table: string, name: string): WebhookCounters {
    let c = this.counters.get(key(table, name));
    if (!c) this.counters.set(key(table, name), (c = newCounters()));
    return c;
  }

  private statusOf(config: WebhookConfig): WebhookStatus {
    return this.receivers.get(config.table)?.get(config.name)?.status() ?? { ...IDLE_STATUS };
  }

  private view(c: WebhookConfig): WebhookView {
    return {
      name: c.name,
      url: c.url,
      batchSize: c.batchSize,
      timeoutMs: c.timeoutMs,
      hasSecret: c.secret !== undefined,
      createdAt: c.createdAt,
      updatedAt: c.updatedAt,
      ...this.statusOf(c),
    };
  }
}

function key(table: string, name: string): string {
  return `${table}\u0000${name}`;
}

function byName(a: WebhookConfig, b: WebhookConfig): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
