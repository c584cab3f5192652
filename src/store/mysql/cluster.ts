/**
 * Node membership and webhook leases of nodes sharing one database: `tablemq_nodes` (one row per live node,
 * with its id slot) and `tablemq_webhook_leases` (one row per webhook a node drives), both made on first
 * use. Neither has a `vitess_message` COMMENT, so discovery never takes them for message tables (a test
 * checks it).
 *
 * Uniqueness comes from the keys, not from reading first: a slot is UNIQUE, so two nodes joining at once
 * cannot both get it (the loser meets the key and picks again); a lease is one row per webhook, taken or
 * renewed by one INSERT … ON DUPLICATE KEY UPDATE whose row lock decides between nodes renewing at once.
 */
import { type ColumnType, type Kysely, type RawBuilder, sql } from "kysely";
import {
  NODE_SLOTS,
  type NodeRecord,
  type NodeStore,
  type NodeUpdate,
  parseWebhookLeaseKey,
  pickFreeSlot,
  type WebhookLeaseStore,
  type WebhookRef,
  webhookLeaseKey,
} from "../cluster-types.js";
import { errno } from "./ddl.js";
import { toNumber } from "./values.js";

export const NODES_TABLE = "tablemq_nodes";
export const WEBHOOK_LEASES_TABLE = "tablemq_webhook_leases";

/** A BIGINT or INT column: mysql2 returns a number or, past 2^53, a decimal string. */
type Integer = ColumnType<number | string, number, number>;

interface NodesTable {
  id: string;
  slot: Integer;
  url: string | null;
  version: string;
  started_at: Integer;
  heartbeat_at: Integer;
  redis: ColumnType<number | boolean, number, number>;
}

interface WebhookLeasesTable {
  table_name: string;
  name: string;
  owner: string;
  expires_at: Integer;
}

interface ClusterDatabase {
  tablemq_nodes: NodesTable;
  tablemq_webhook_leases: WebhookLeasesTable;
}

export function createNodesTableStatement(): RawBuilder<unknown> {
  return sql`CREATE TABLE IF NOT EXISTS ${sql.table(NODES_TABLE)} (
    id           VARCHAR(128)      NOT NULL,
    slot         SMALLINT UNSIGNED NOT NULL,
    url          VARCHAR(2048)     DEFAULT NULL,
    version      VARCHAR(64)       NOT NULL,
    started_at   BIGINT            NOT NULL,
    heartbeat_at BIGINT            NOT NULL,
    redis        TINYINT(1)        NOT NULL DEFAULT 0,
    PRIMARY KEY (id),
    UNIQUE KEY slot_idx (slot)
  ) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin COMMENT 'tablemq cluster nodes'`;
}

export function createWebhookLeasesTableStatement(): RawBuilder<unknown> {
  return sql`CREATE TABLE IF NOT EXISTS ${sql.table(WEBHOOK_LEASES_TABLE)} (
    table_name VARCHAR(64)  NOT NULL,
    name       VARCHAR(64)  NOT NULL,
    owner      VARCHAR(128) NOT NULL,
    expires_at BIGINT       NOT NULL,
    PRIMARY KEY (table_name, name)
  ) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin COMMENT 'tablemq webhook leases'`;
}

const ER_DUP_ENTRY = 1062;
const ER_NO_SUCH_TABLE = 1146;
const ER_LOCK_DEADLOCK = 1213;
/** Tries at a statement InnoDB chose as a deadlock's victim (rolled back: nothing was written). */
const DEADLOCK_ATTEMPTS = 5;
/** Tries at a slot when other nodes keep taking the one picked (each try reads the slots again). */
const JOIN_ATTEMPTS = 32;
/** Rows per INSERT or DELETE of leases. */
const LEASE_CHUNK = 500;
/** How often acquireWebhookLeases also deletes leases that ran out a TTL ago (nobody renews them). */
const LEASE_SWEEP_MS = 60_000;

export class MysqlClusterStore implements NodeStore, WebhookLeaseStore {
  private readonly db: Kysely<ClusterDatabase>;
  private readonly made = new Map<string, Promise<void>>();
  private lastSweepMs = -Infinity;

  /** `db` is the MysqlStore's pool (`store.db`); this store neither owns nor closes it. */
  constructor(db: Kysely<any>) {
    this.db = db as Kysely<ClusterDatabase>;
  }

  joinNode(record: Omit<NodeRecord, "slot" | "heartbeatAt">, nowMs: number, staleBeforeMs: number, preferSlot?: number): Promise<number> {
    return this.on(NODES_TABLE, createNodesTableStatement, async () => {
      for (let attempt = 0; attempt < JOIN_ATTEMPTS; attempt++) {
        // Its own old row goes too: a node joins again after its row vanished, or restarts with its id.
        const stale = this.db
          .deleteFrom("tablemq_nodes")
          .where((eb) => eb.or([eb("heartbeat_at", "<", Math.floor(staleBeforeMs)), eb("id", "=", record.id)]));
        await retryDeadlocks(() => stale.execute());
        const rows = await this.db.selectFrom("tablemq_nodes").select("slot").execute();
        const slot = pickFreeSlot(new Set(rows.map((r) => toNumber(r.slot))), preferSlot);
        if (slot === undefined) throw new Error(`all ${NODE_SLOTS} node slots are held by live nodes`);
        try {
          await this.db
            .insertInto("tablemq_nodes")
            .values({
              id: record.id,
              slot,
              url: record.url,
              version: record.version,
              started_at: Math.floor(record.startedAt),
              heartbeat_at: Math.floor(nowMs),
              redis: record.redis ? 1 : 0,
            })
            .execute();
          return slot;
        } catch (err) {
          // Another node took the slot meanwhile, or its join locked ours out: pick again.
          if (errno(err) !== ER_DUP_ENTRY && errno(err) !== ER_LOCK_DEADLOCK) throw err;
        }
      }
      throw new Error(`could not claim a node slot in ${JOIN_ATTEMPTS} tries: other nodes kept taking them`);
    });
  }

  heartbeat(id: string, nowMs: number, fields: NodeUpdate = {}): Promise<boolean> {
    return this.on(NODES_TABLE, createNodesTableStatement, async () => {
      const update = this.db
        .updateTable("tablemq_nodes")
        .set({
          heartbeat_at: Math.floor(nowMs),
          ...(fields.url !== undefined && { url: fields.url }),
          ...(fields.redis !== undefined && { redis: fields.redis ? 1 : 0 }),
        })
        .where("id", "=", id);
      const result = await retryDeadlocks(() => update.executeTakeFirst());
      // mysql2 connects with CLIENT_FOUND_ROWS: a matched row counts even when nothing changed.
      return Number(result.numUpdatedRows) > 0;
    });
  }

  listNodes(): Promise<NodeRecord[]> {
    return this.on(NODES_TABLE, createNodesTableStatement, async () => {
      const rows = await this.db.selectFrom("tablemq_nodes").selectAll().orderBy("slot").execute();
      return rows.map((r) => ({
        id: r.id,
        slot: toNumber(r.slot),
        url: r.url,
        version: r.version,
        startedAt: toNumber(r.started_at),
        heartbeatAt: toNumber(r.heartbeat_at),
        redis: Boolean(Number(r.redis)),
      }));
    });
  }

  leaveNode(id: string): Promise<void> {
    return this.on(NODES_TABLE, createNodesTableStatement, async () => {
      const leave = this.db.deleteFrom("tablemq_nodes").where("id", "=", id);
      await retryDeadlocks(() => leave.execute());
    });
  }

  /**
   * One INSERT … ON DUPLICATE KEY UPDATE takes free leases (new rows) and, on existing rows, takes expired
   * ones and renews the owner's; then one SELECT reads what the owner holds. Both assignments test the
   * same condition, so the result is the same whether the server applies them left to right (MySQL,
   * MariaDB) or simultaneously (MariaDB's SIMULTANEOUS_ASSIGNMENT): after `owner` is set, the condition
   * holds exactly when it held before.
   */
  acquireWebhookLeases(owner: string, webhooks: readonly WebhookRef[], nowMs: number, ttlMs: number): Promise<Set<string>> {
    return this.on(WEBHOOK_LEASES_TABLE, createWebhookLeasesTableStatement, async () => {
      const now = Math.floor(nowMs);
      const until = Math.floor(nowMs + ttlMs);
      if (now - this.lastSweepMs >= LEASE_SWEEP_MS) {
        // Leases of nodes that died with webhooks since deleted: no one will take or release them.
        const sweep = this.db.deleteFrom("tablemq_webhook_leases").where("expires_at", "<=", now - Math.floor(ttlMs));
        await retryDeadlocks(() => sweep.execute());
        this.lastSweepMs = now;
      }
      const free = sql<boolean>`owner = ${owner} OR expires_at <= ${now}`;
      // In key order, so nodes asking at once lock the rows in the same order (fewer deadlocks).
      const sorted = [...webhooks].sort(byKey);
      for (let i = 0; i < sorted.length; i += LEASE_CHUNK) {
        const insert = this.db
          .insertInto("tablemq_webhook_leases")
          .values(sorted.slice(i, i + LEASE_CHUNK).map((w) => ({ table_name: w.table, name: w.name, owner, expires_at: until })))
          .onDuplicateKeyUpdate({
            owner: sql`IF(${free}, ${owner}, owner)`,
            expires_at: sql`IF(${free}, ${until}, expires_at)`,
          });
        await retryDeadlocks(() => insert.execute());
      }
      const held = await this.db
        .selectFrom("tablemq_webhook_leases")
        .select(["table_name", "name"])
        .where("owner", "=", owner)
        .where("expires_at", ">", now)
        .execute();
      return new Set(held.map((r) => webhookLeaseKey(r.table_name, r.name)));
    });
  }

  releaseWebhookLeases(owner: string, keys: Iterable<string>): Promise<void> {
    const refs = [...keys].map(parseWebhookLeaseKey);
    if (refs.length === 0) return Promise.resolve();
    return this.on(WEBHOOK_LEASES_TABLE, createWebhookLeasesTableStatement, async () => {
      for (let i = 0; i < refs.length; i += LEASE_CHUNK) {
        const chunk = refs.slice(i, i + LEASE_CHUNK);
        const release = this.db
          .deleteFrom("tablemq_webhook_leases")
          .where("owner", "=", owner)
          .where((eb) =>
            eb(
              eb.refTuple("table_name", "name"),
              "in",
              chunk.map((r) => eb.tuple(r.table, r.name)),
            ),
          );
        await retryDeadlocks(() => release.execute());
      }
    });
  }

  /** Runs `work` once the table exists; made again (once) if it was dropped meanwhile. */
  private async on<T>(table: string, create: () => RawBuilder<unknown>, work: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      let made = this.made.get(table);
      if (!made) {
        made = create()
          .execute(this.db)
          .then(
            () => undefined,
            (err: unknown) => {
              this.made.delete(table); // not made: the next call tries again
              throw err;
            },
          );
        this.made.set(table, made);
      }
      await made;
      try {
        return await work();
      } catch (err) {
        if (attempt > 0 || errno(err) !== ER_NO_SUCH_TABLE) throw err;
        this.made.delete(table);
      }
    }
  }
}

/**
 * Runs a single statement again when InnoDB rolled it back as a deadlock's victim (nothing was written):
 * concurrent INSERT … ON DUPLICATE KEY UPDATE of the same new keys can deadlock on their gap locks even in
 * key order, and a join's DELETE of stale rows scans, and locks, the whole nodes table.
 */
async function retryDeadlocks<T>(statement: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await statement();
    } catch (err) {
      if (errno(err) !== ER_LOCK_DEADLOCK || attempt >= DEADLOCK_ATTEMPTS) throw err;
    }
  }
}

function byKey(a: WebhookRef, b: WebhookRef): number {
  return a.table < b.table ? -1 : a.table > b.table ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
