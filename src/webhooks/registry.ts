import { randomUUID } from "node:crypto";
import { type Clock, systemClock, type TimerHandle } from "../clock.js";
import type { Engine } from "../engine/engine.js";
import { ConflictError, TableNotFoundError, WebhookNotFoundError } from "../errors.js";
import { type Logger, silentLogger } from "../logger.js";
import type { TableHandle } from "../engine/table-handle.js";
import { type WebhookRef, webhookLeaseKey } from "../store/cluster-types.js";
import type { WebhookConfig, WebhookStore } from "../store/types.js";
import { WebhookConfigs } from "./configs.js";
import { type WebhookLeaseOptions, WebhookLeases } from "./leases.js";
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

const key = webhookLeaseKey;

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
  /**
   * Several nodes on one database: each webhook is driven by the node holding its lease (leases.ts).
   * Without, this registry drives every webhook (a single node).
   */
  leases?: WebhookLeaseOptions;
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
 *
 * With `leases` (several nodes on one database), a webhook gets a receiver only on the node holding its
 * lease: every lease round (every ttl / 3) reads the configurations again, so changes other nodes made
 * apply here within a round (reloadConfigs() applies them at once), then renews and takes leases and starts
 * or stops receivers to match. Every node shows every webhook; `driver` says whether this node drives it.
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
  private readonly configs = new WebhookConfigs();
  /** table → name → receiver, for tables the engine serves. */
  private readonly receivers = new Map<string, Map<string, WebhookReceiver>>();
  private readonly counters = new Map<string, WebhookCounters>();
  private loaded = false;
  private loading: Promise<void> | undefined;
  private reloadTimer: TimerHandle | undefined;
  private unwatch: (() => void) | undefined;
  private closed = false;
  private readonly leases: WebhookLeases | undefined;

  constructor(config: WebhookRegistryConfig) {
    this.engine = config.engine;
    this.store = config.store;
    this.clock = config.clock ?? systemClock;
    this.log = config.log ?? silentLogger;
    this.retry = { ...(config.retry ?? DEFAULT_RETRY) };
    this.transport = config.transport ?? fetchTransport;
    this.newDeliveryId = config.newDeliveryId ?? randomUUID;
    this.reloadMs = config.reloadMs ?? 5_000;
    if (config.leases) {
      this.leases = new WebhookLeases(config.leases, {
        clock: this.clock,
        log: this.log,
        refresh: () => (this.loaded ? this.syncConfigs() : this.ensureLoaded()),
        wanted: () => this.servedWebhooks(),
        changed: (held) => this.applyLeases(held),
      });
    }
  }

  /** Follows the engine's tables and loads the configurations (retrying in the background if it cannot). */
  async open(): Promise<void> {
    this.unwatch ??= this.engine.watchTables({
      opened: (table) => {
        this.startTable(table);
        void this.leases?.renewNow(); // take the leases of its webhooks now
      },
      closed: (table, dropped) => void this.tableClosed(table, dropped),
    });
    try {
      await this.ensureLoaded();
    } catch (err) {
      this.log.warn({ err }, "could not load the webhooks; retrying");
      this.scheduleReload();
    }
    await this.leases?.renewNow(); // the first round (never rejects); then every ttl / 3
  }

  /**
   * Stops every receiver: POSTs in flight may finish (and are acked), held messages go back to their tables.
   * Then the webhook leases are released, so other nodes take the webhooks at once; `releaseLeases: false`
   * leaves them to run out as a crashed node's would (for tests).
   */
  async close(options: { releaseLeases?: boolean } = {}): Promise<void> {
    this.closed = true;
    this.unwatch?.();
    if (this.reloadTimer !== undefined) this.clock.clearTimeout(this.reloadTimer);
    this.leases?.stop();
    const all = [...this.receivers.values()].flatMap((byName) => [...byName.values()]);
    this.receivers.clear();
    await Promise.all(all.map((r) => r.stop(true)));
    await this.leases?.close(options.releaseLeases ?? true);
  }

  /**
   * Reads the configurations again and applies them at once: webhooks another node created, changed or
   * deleted (when the bus says one did). With leases a lease round follows, so a new webhook may be driven
   * here. Rejects when the configurations cannot be read.
   */
  async reloadConfigs(): Promise<void> {
    if (this.closed) return;
    if (this.loaded) await this.syncConfigs();
    else await this.ensureLoaded(); // a first load reads everything anyway
    await this.leases?.renewNow();
  }

  /** Creates or replaces a webhook; `created` tells which. */
  async put(table: string, name: string, input: WebhookInput): Promise<{ created: boolean; webhook: WebhookView }> {
    await this.engine.table(table); // 404 for an unknown table
    await this.ensureLoaded();
    const existing = this.configs.get(table, name);
    if (!existing && this.configs.count(table) >= MAX_WEBHOOKS_PER_TABLE) {
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
    this.configs.remember(config);
    const receiver = this.receivers.get(table)?.get(name);
    if (receiver) receiver.configure(config);
    else if (this.drives(table, name)) this.startReceiver(config);
    else if (this.leases) await this.leases.renewNow(); // a new webhook: its lease is free (so the answer says who drives it)
    return { created, webhook: this.view(config) };
  }

  /** Deletes a webhook; its held messages go back to the table at once. */
  async remove(table: string, name: string): Promise<void> {
    await this.engine.table(table);
    await this.ensureLoaded();
    const deleted = await this.store.deleteWebhook(table, name);
    const known = await this.forget(table, name);
    if (!deleted && !known) throw new WebhookNotFoundError(table, name);
  }

  async list(table: string): Promise<WebhookView[]> {
    await this.engine.table(table);
    await this.ensureLoaded();
    return this.configs.of(table).map((c) => this.view(c));
  }

  async get(table: string, name: string): Promise<WebhookView> {
    await this.engine.table(table);
    await this.ensureLoaded();
    const config = this.configs.get(table, name);
    if (!config) throw new WebhookNotFoundError(table, name);
    return this.view(config);
  }

  /** The webhooks' health for a table's description (as loaded; empty before the first load). */
  summaries(table: string): WebhookSummary[] {
    return this.configs.of(table).map((c) => ({ name: c.name, ...this.statusOf(c) }));
  }

  reports(): WebhookReport[] {
    const out: WebhookReport[] = [];
    for (const config of this.configs.all()) {
      const { table, name } = config;
      out.push({ table, name, counters: this.countersOf(table, name), status: this.statusOf(config) });
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
    this.configs.merge(stored);
    this.loaded = true;
    if (this.reloadTimer !== undefined) this.clock.clearTimeout(this.reloadTimer);
    this.reloadTimer = undefined;
    for (const table of this.configs.tables()) if (this.engine.has(table)) this.startTable(table);
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

  /** Receivers for every webhook of a table the engine serves (those it lacks). */
  private startTable(table: string): void {
    if (!this.loaded || this.closed) return;
    for (const config of this.configs.of(table)) {
      if (!this.receivers.get(table)?.has(config.name) && this.drives(table, config.name)) this.startReceiver(config);
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
      paused: () => handle?.options.paused === true,
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
    if (!dropped || !this.configs.hasTable(table)) return;
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

  /** Whether this node drives the webhook: always on a single node, else when it holds its lease. */
  private drives(table: string, name: string): boolean {
    return !this.leases || this.leases.holds(table, name);
  }

  /** The webhooks of the tables the engine serves: those this node asks leases for. */
  private servedWebhooks(): WebhookRef[] {
    return [...this.configs.all()].filter((c) => this.engine.has(c.table)).map(({ table, name }) => ({ table, name }));
  }

  /** A lease round ended: receivers for the webhooks held, none for the others (stopped as at close). */
  private applyLeases(held: ReadonlySet<string>): void {
    if (this.closed || !this.loaded) return;
    for (const [table, byName] of this.receivers) {
      for (const [name, receiver] of byName) {
        if (held.has(key(table, name))) continue;
        this.log.info({ table, webhook: name }, "webhook lease lost; another node drives it");
        this.dropReceiver(table, name, receiver);
        void receiver.stop(true);
      }
    }
    for (const config of this.configs.all()) {
      const { table, name } = config;
      if (!this.engine.has(table) || !held.has(key(table, name)) || this.receivers.get(table)?.has(name)) continue;
      this.log.info({ table, webhook: name }, "webhook lease taken; driving it");
      this.startReceiver(config);
    }
  }

  /**
   * Reads the configurations and applies them: new and changed ones are remembered (a running receiver
   * takes the change), those gone are forgotten (their receivers stopped, held messages back at once). Read
   * again if this registry changed one meanwhile (its own put/remove is newer than what was read).
   */
  private async syncConfigs(): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const generation = this.configs.generation;
      const stored = await this.store.listWebhooks();
      if (this.closed) return;
      if (generation !== this.configs.generation) continue;
      const { changed, gone } = this.configs.replaceWith(stored);
      for (const config of changed) this.receivers.get(config.table)?.get(config.name)?.configure(config);
      if (!this.leases) for (const table of this.configs.tables()) if (this.engine.has(table)) this.startTable(table);
      await Promise.all(gone.map((w) => this.stopForgotten(w.table, w.name)));
      return;
    }
  }

  /**
   * Forgets a webhook's configuration and counters at once, and stops its receiver (held messages go back
   * at once); false when it was not known.
   */
  private async forget(table: string, name: string): Promise<boolean> {
    const known = this.configs.delete(table, name);
    await this.stopForgotten(table, name);
    return known;
  }

  /** A webhook that is no more: no counters, no receiver (held messages go back at once), no lease. */
  private async stopForgotten(table: string, name: string): Promise<void> {
    this.counters.delete(key(table, name));
    const receiver = this.receivers.get(table)?.get(name);
    if (receiver) {
      this.dropReceiver(table, name, receiver);
      await receiver.stop(false);
    }
    await this.leases?.release(table, name);
  }

  private forgetTable(table: string): void {
    for (const name of this.configs.forgetTable(table)) this.counters.delete(key(table, name));
  }

  private countersOf(table: string, name: string): WebhookCounters {
    let c = this.counters.get(key(table, name));
    if (!c) this.counters.set(key(table, name), (c = newCounters()));
    return c;
  }

  private statusOf(config: WebhookConfig): WebhookStatus {
    const status = this.receivers.get(config.table)?.get(config.name)?.status() ?? { ...IDLE_STATUS };
    if (this.leases) status.driver = this.leases.holds(config.table, config.name) ? "this" : "other";
    return status;
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
