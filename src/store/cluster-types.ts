/**
 * What several tablemq nodes on one database share through it: who is alive (NodeStore) and which node
 * drives each webhook (WebhookLeaseStore). Times are epoch milliseconds of the calling node's clock, so the
 * nodes' clocks must agree (NTP) to well within a heartbeat's staleness and a lease's TTL.
 */

import { SERVER_ID_NODES } from "../ids.js";

/** Node slots: the node bits of the message ids servers make (ids.ts), unique among live nodes. */
export const NODE_SLOTS = SERVER_ID_NODES;

/** A node as it registered itself (tablemq_nodes). */
export interface NodeRecord {
  id: string;
  /** 0..NODE_SLOTS-1, unique among live nodes. */
  slot: number;
  /** Where peers reach it, if it says. */
  url: string | null;
  version: string;
  startedAt: number;
  /** Its last heartbeat. */
  heartbeatAt: number;
  /** Whether it is connected to the Redis bus. */
  redis: boolean;
}

/** `prefer` when it is a free slot, else the lowest free one; undefined when every slot is taken. */
export function pickFreeSlot(taken: ReadonlySet<number>, prefer?: number): number | undefined {
  if (prefer !== undefined && Number.isInteger(prefer) && prefer >= 0 && prefer < NODE_SLOTS && !taken.has(prefer)) return prefer;
  for (let slot = 0; slot < NODE_SLOTS; slot++) if (!taken.has(slot)) return slot;
  return undefined;
}

/** What a node may change about itself with a heartbeat. */
export type NodeUpdate = Partial<Pick<NodeRecord, "url" | "redis">>;

export interface NodeStore {
  /**
   * Registers the node (replacing a row of the same id) and claims a slot unique among live nodes: rows
   * whose heartbeat is older than `staleBeforeMs` are deleted first, and their slots are free. The slot is
   * `preferSlot` when that is free (a node joining again keeps its slot if it can), otherwise the lowest
   * free one. Rejects when every slot is held by a live node.
   */
  joinNode(record: Omit<NodeRecord, "slot" | "heartbeatAt">, nowMs: number, staleBeforeMs: number, preferSlot?: number): Promise<number>;
  /** Records a heartbeat (and `fields`); false when the node's row is gone (deleted as stale): join again. */
  heartbeat(id: string, nowMs: number, fields?: NodeUpdate): Promise<boolean>;
  /** Every registered node, stale ones included (the caller judges freshness). */
  listNodes(): Promise<NodeRecord[]>;
  leaveNode(id: string): Promise<void>;
}

/** A webhook, as a lease names it. */
export interface WebhookRef {
  table: string;
  name: string;
}

/** A webhook's key in lease sets: table and name joined by NUL (neither may contain it). */
export function webhookLeaseKey(table: string, name: string): string {
  return `${table}\u0000${name}`;
}

export function parseWebhookLeaseKey(key: string): WebhookRef {
  const at = key.indexOf("\u0000");
  if (at < 0) throw new Error(`not a webhook lease key: ${JSON.stringify(key)}`);
  return { table: key.slice(0, at), name: key.slice(at + 1) };
}

/**
 * Which node drives each webhook: a lease per webhook, held by one owner until it runs out. An expired
 * lease is as good as none; the store may delete expired leases at any time.
 */
export interface WebhookLeaseStore {
  /**
   * Takes each of `webhooks` whose lease nobody holds or has run out, renews those `owner` holds (both until
   * nowMs + ttlMs), and returns the keys (webhookLeaseKey) of every unexpired lease `owner` holds afterwards:
   * also leases it holds of webhooks it did not ask for (the caller releases those it no longer wants).
   */
  acquireWebhookLeases(owner: string, webhooks: readonly WebhookRef[], nowMs: number, ttlMs: number): Promise<Set<string>>;
  /** Gives up the leases `owner` holds among `keys` (webhookLeaseKey); others' are left alone. */
  releaseWebhookLeases(owner: string, keys: Iterable<string>): Promise<void>;
}
