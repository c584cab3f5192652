import type { AdapterFactory } from "./types.js";

/** Every system the runner knows, by name, loaded lazily so a missing client library fails only its own. */
export const SYSTEMS: Record<string, () => Promise<AdapterFactory>> = {
  tablemq: async () => (await import("../systems/tablemq.js")).default,
  "tablemq-txn": async () => (await import("../systems/tablemq.js")).txn,
  "tablemq-sqlite": async () => (await import("../systems/tablemq.js")).sqlite,
  "rabbitmq-classic": async () => (await import("../systems/rabbitmq.js")).classic,
  "rabbitmq-quorum": async () => (await import("../systems/rabbitmq.js")).quorum,
  "nats-jetstream": async () => (await import("../systems/nats.js")).default,
  bullmq: async () => (await import("../systems/bullmq.js")).default,
  "pg-boss": async () => (await import("../systems/pgboss.js")).default,
  "node-floor": async () => (await import("../systems/floor.js")).default,
};

/** Yardsticks, not peers: the report gives tablemq's ratio to them apart from the peers'. */
export const YARDSTICKS = new Set(["node-floor"]);

/** tablemq itself on another store: measured beside the peers, but not a peer in "tablemq ÷ each peer". */
export const VARIANTS = new Set(["tablemq-txn", "tablemq-sqlite"]);

/** Systems that run only some workloads (the rest are skipped for them); every other system runs all. */
export const SYSTEM_WORKLOADS: Record<string, readonly string[]> = {
  // Issue 28: the embedded store's rows in w1, w2 and the backlog, and the paired rounds.
  "tablemq-sqlite": ["w1", "w1-e2e", "w2", "backlog"],
  // Issue 26: producers enqueue with tablemq/sql in transactions of their own, then notify.
  "tablemq-txn": ["w1", "w1-e2e", "w2", "txn-insert"],
};
