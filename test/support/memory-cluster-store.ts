/**
 * NodeStore and WebhookLeaseStore in memory, with the SQL store's semantics (src/store/mysql/cluster.ts):
 * unique slots, stale rows deleted at a join, leases taken when free or expired. `connect()` gives a node
 * its own connection, which a test can cut (`down`) or hang (`hold`) without affecting the other nodes.
 */
import {
  type NodeRecord,
  type NodeStore,
  type NodeUpdate,
  parseWebhookLeaseKey,
  pickFreeSlot,
  type WebhookLeaseStore,
  type WebhookRef,
  webhookLeaseKey,
} from "../../src/store/cluster-types.js";

interface Lease {
  owner: string;
  expiresAt: number;
}

export class MemoryClusterStore implements NodeStore, WebhookLeaseStore {
  /** By id. */
  readonly nodes = new Map<string, NodeRecord>();
  /** By webhookLeaseKey. */
  readonly leases = new Map<string, Lease>();
  /** Every call fails while set (the database is down for every node). */
  down = false;

  /** A node's own view of this store: the same data, its own reachability. */
  connect(): MemoryClusterConnection {
    return new MemoryClusterConnection(this);
  }

  async joinNode(
    record: Omit<NodeRecord, "slot" | "heartbeatAt">,
    nowMs: number,
    staleBeforeMs: number,
    preferSlot?: number,
  ): Promise<number> {
    this.check();
    for (const [id, node] of this.nodes) if (node.heartbeatAt < staleBeforeMs || id === record.id) this.nodes.delete(id);
    const slot = pickFreeSlot(new Set([...this.nodes.values()].map((n) => n.slot)), preferSlot);
    if (slot === undefined) throw new Error("all 1024 node slots are held by live nodes");
    this.nodes.set(record.id, { ...record, slot, heartbeatAt: nowMs });
    return slot;
  }

  async heartbeat(id: string, nowMs: number, fields: NodeUpdate = {}): Promise<boolean> {
    this.check();
    const node = this.nodes.get(id);
    if (!node) return false;
    node.heartbeatAt = nowMs;
    if (fields.url !== undefined) node.url = fields.url;
    if (fields.redis !== undefined) node.redis = fields.redis;
    return true;
  }

  async listNodes(): Promise<NodeRecord[]> {
    this.check();
    return [...this.nodes.values()].sort((a, b) => a.slot - b.slot).map((n) => ({ ...n }));
  }

  async leaveNode(id: string): Promise<void> {
    this.check();
    this.nodes.delete(id);
  }

  async acquireWebhookLeases(owner: string, webhooks: readonly WebhookRef[], nowMs: number, ttlMs: number): Promise<Set<string>> {
    this.check();
    for (const w of webhooks) {
      const key = webhookLeaseKey(w.table, w.name);
      const lease = this.leases.get(key);
      if (!lease || lease.owner === owner || lease.expiresAt <= nowMs) this.leases.set(key, { owner, expiresAt: nowMs + ttlMs });
    }
    const held = new Set<string>();
    for (const [key, lease] of this.leases) if (lease.owner === owner && lease.expiresAt > nowMs) held.add(key);
    return held;
  }

  async releaseWebhookLeases(owner: string, keys: Iterable<string>): Promise<void> {
    this.check();
    for (const key of keys) {
      parseWebhookLeaseKey(key);
      if (this.leases.get(key)?.owner === owner) this.leases.delete(key);
    }
  }

  /** Who holds the webhook's lease at `nowMs` (undefined: nobody, or it ran out). */
  holder(table: string, name: string, nowMs: number): string | undefined {
    const lease = this.leases.get(webhookLeaseKey(table, name));
    return lease && lease.expiresAt > nowMs ? lease.owner : undefined;
  }

  check(): void {
    if (this.down) throw new Error("connect ECONNREFUSED (memory cluster store is down)");
  }
}

/** One node's connection to a MemoryClusterStore. */
export class MemoryClusterConnection implements NodeStore, WebhookLeaseStore {
  /** Every call of this connection fails while set. */
  down = false;
  /** Calls made, by method name. */
  readonly calls = new Map<string, number>();
  private held: Promise<void> | undefined;

  constructor(readonly store: MemoryClusterStore) {}

  /** Calls hang until the returned function is called (a hung database); they then run. */
  hold(): () => void {
    let release!: () => void;
    this.held = new Promise((resolve) => (release = resolve));
    return () => {
      this.held = undefined;
      release();
    };
  }

  joinNode(...args: Parameters<NodeStore["joinNode"]>): Promise<number> {
    return this.run("joinNode", () => this.store.joinNode(...args));
  }

  heartbeat(...args: Parameters<NodeStore["heartbeat"]>): Promise<boolean> {
    return this.run("heartbeat", () => this.store.heartbeat(...args));
  }

  listNodes(): Promise<NodeRecord[]> {
    return this.run("listNodes", () => this.store.listNodes());
  }

  leaveNode(id: string): Promise<void> {
    return this.run("leaveNode", () => this.store.leaveNode(id));
  }

  acquireWebhookLeases(...args: Parameters<WebhookLeaseStore["acquireWebhookLeases"]>): Promise<Set<string>> {
    return this.run("acquireWebhookLeases", () => this.store.acquireWebhookLeases(...args));
  }

  releaseWebhookLeases(...args: Parameters<WebhookLeaseStore["releaseWebhookLeases"]>): Promise<void> {
    return this.run("releaseWebhookLeases", () => this.store.releaseWebhookLeases(...args));
  }

  private async run<T>(name: string, work: () => Promise<T>): Promise<T> {
    this.calls.set(name, (this.calls.get(name) ?? 0) + 1);
    if (this.held) await this.held;
    if (this.down) throw new Error("connect ECONNREFUSED (this node's connection is down)");
    return work();
  }
}
