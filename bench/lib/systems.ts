import type { AdapterFactory } from "./types.js";

/** Every system the runner knows, by name, loaded lazily so a missing client library fails only its own. */
export const SYSTEMS: Record<string, () => Promise<AdapterFactory>> = {
  tablemq: async () => (await import("../systems/tablemq.js")).default,
  "rabbitmq-classic": async () => (await import("../systems/rabbitmq.js")).classic,
  "rabbitmq-quorum": async () => (await import("../systems/rabbitmq.js")).quorum,
  "nats-jetstream": async () => (await import("../systems/nats.js")).default,
  bullmq: async () => (await import("../systems/bullmq.js")).default,
  "pg-boss": async () => (await import("../systems/pgboss.js")).default,
  "node-floor": async () => (await import("../systems/floor.js")).default,
};

/** Yardsticks, not peers: the report gives tablemq's ratio to them apart from the peers'. */
export const YARDSTICKS = new Set(["node-floor"]);
