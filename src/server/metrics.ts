import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ClusterNode } from "../cluster/node.js";
import type { BusStats } from "../cluster/redis-bus.js";
import type { Engine } from "../engine/engine.js";
import type { ManagerStats } from "../manager/stats.js";
import { SLOW_MS, type StatementTimes } from "../store/sqlite/timing.js";
import type { WebhookCounters, WebhookReport } from "../webhooks/types.js";

/** Counters mirrored from each manager's stats (Vitess's MessageStats), name → stats field. */
const COUNTERS: ReadonlyArray<[string, keyof ManagerStats, string]> = [
  ["tablemq_messages_enqueued_total", "enqueued", "Messages enqueued through this server (duplicates not counted)"],
  ["tablemq_messages_queued_total", "queued", "Messages put in the cache by the insert path"],
  ["tablemq_messages_sent_total", "sent", "Messages sent to subscribers"],
  ["tablemq_messages_delayed_total", "delayed", "Messages sent again (epoch >= 1)"],
  ["tablemq_messages_acked_total", "acked", "Messages acked"],
  ["tablemq_messages_postponed_total", "postponed", "Messages postponed by clients"],
  ["tablemq_messages_purged_total", "purged", "Acked rows purged"],
  ["tablemq_messages_send_failed_total", "sendFailed", "Messages whose send failed"],
  ["tablemq_claim_failed_total", "claimFailed", "Messages not sent because their claim before the send failed"],
  ["tablemq_claims_lost_total", "claimsLost", "Messages read due here but claimed first by another node (or changed since): not sent"],
  ["tablemq_poll_failed_total", "pollFailed", "Polls that failed"],
  ["tablemq_purge_failed_total", "purgeFailed", "Purges that failed"],
  ["tablemq_polls_total", "polls", "Polls of the table"],
  ["tablemq_messages_dead_lettered_total", "deadLettered", "Messages moved to the dead-letter table after maxAttempts deliveries"],
  ["tablemq_dead_letter_failed_total", "deadLetterFailed", "Messages out of attempts that could not be moved (retried later)"],
  ["tablemq_messages_redriven_total", "redriven", "Dead letters moved back into the table"],
  ["tablemq_messages_failed_total", "failed", "Messages failed by consumers and dead-lettered at once"],
  ["tablemq_messages_deleted_total", "deleted", "Unacked messages deleted by an operator (one by id, or a purge)"],
];

/**
 * The server's Prometheus metrics, in a registry of its own (several servers can run in one process, as
 * in tests). Counters and gauges are read from the engine at scrape time; histograms are observed by the
 * routes and subscribers.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly enqueueSeconds: Histogram<"table">;
  readonly deliveryLagSeconds: Histogram<"table">;
  readonly batchSize: Histogram<"table" | "kind">;

  constructor(engine: Engine, webhooks?: { reports(): WebhookReport[] }, cluster?: ClusterNode, sqlite?: () => Promise<StatementTimes>) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const seen = new Map<string, number>();
    const perTable: Array<{ remove(labels: { table: string }): void }> = [];
    for (const [name, field, help] of COUNTERS) {
      const counter = new Counter({
        name,
        help,
        labelNames: ["table"],
        registers,
        collect() {
          for (const table of engine.tableNames()) {
            const value = engine.snapshot(table)?.stats[field] ?? 0;
            const key = `${name}\u0000${table}`;
            const last = seen.get(key) ?? 0;
            // Lower than last time: the table was dropped and made again, its manager counts from 0.
            const delta = value >= last ? value - last : value;
            if (delta > 0) this.inc({ table }, delta);
            seen.set(key, value);
          }
        },
      });
      perTable.push(counter);
    }
    const gauge = (name: string, help: string, read: (s: NonNullable<ReturnType<Engine["snapshot"]>>) => number) =>
      perTable.push(
        new Gauge({
          name,
          help,
          labelNames: ["table"],
          registers,
          collect() {
            this.reset();
            for (const table of engine.tableNames()) {
              const s = engine.snapshot(table);
              if (s) this.set({ table }, read(s));
            }
          },
        }),
      );
    gauge("tablemq_cache_size", "Messages in the cache (queued or being sent)", (s) => s.cached);
    gauge("tablemq_receivers", "Subscribers", (s) => s.receivers);
    gauge("tablemq_in_flight", "Messages delivered and awaiting their ack", (s) => s.held);
    gauge("tablemq_table_paused", "1 while the table's delivery is paused (POST /v1/tables/{table}/pause), else 0", (s) =>
      s.paused ? 1 : 0,
    );
    perTable.push(
      new Gauge({
        name: "tablemq_dead_letters",
        help: "Messages in the table's dead-letter table",
        labelNames: ["table"],
        registers,
        async collect() {
          this.reset();
          const tables = engine.tableNames();
          const counts = await Promise.allSettled(tables.map((t) => engine.countDead(t)));
          counts.forEach((c, i) => c.status === "fulfilled" && this.set({ table: tables[i]! }, c.value));
        },
      }),
    );
    // Series of tables that are gone (dropped) are removed at the next scrape, so labels do not pile up.
    const known = new Set<string>();
    const pruneGone = (current: string[]) => {
      const now = new Set(current);
      for (const table of known) {
        if (now.has(table)) continue;
        for (const metric of perTable) metric.remove({ table });
        for (const key of seen.keys()) if (key.endsWith(`\u0000${table}`)) seen.delete(key);
        known.delete(table);
      }
      for (const t of current) known.add(t);
    };
    new Gauge({
      name: "tablemq_tables",
      help: "Message tables served",
      registers,
      collect() {
        const tables = engine.tableNames();
        pruneGone(tables);
        this.set(tables.length);
      },
    });
    this.enqueueSeconds = new Histogram({
      name: "tablemq_enqueue_seconds",
      help: "Enqueue request latency, until the rows are committed",
      labelNames: ["table"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.deliveryLagSeconds = new Histogram({
      name: "tablemq_delivery_lag_seconds",
      help: "From when a message was due (enqueue time for undelayed ones) to its delivery",
      labelNames: ["table"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 60],
      registers,
    });
    perTable.push(this.enqueueSeconds, this.deliveryLagSeconds);
    this.batchSize = new Histogram({
      name: "tablemq_batch_size",
      help: "Messages per request or frame (HTTP or WebSocket): kind = enqueue | ack | postpone | extend | delivery",
      labelNames: ["table", "kind"],
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
      registers,
    });
    const batchSize = this.batchSize;
    perTable.push({
      remove: ({ table }) => {
        for (const kind of ["enqueue", "ack", "postpone", "extend", "delivery"]) batchSize.remove({ table, kind });
      },
    });
    // A webhook another node drives has its figures there: each node reports only the webhooks it drives.
    if (webhooks) webhookMetrics(registers, () => webhooks.reports().filter((r) => r.status.driver !== "other"));
    if (cluster) clusterMetrics(registers, cluster);
    if (sqlite) sqliteMetrics(registers, sqlite);
  }
}

/** Bus traffic counters mirrored from RedisBus.stats (name → field). */
const BUS_COUNTERS: ReadonlyArray<[string, keyof BusStats, string]> = [
  ["tablemq_bus_messages_published_total", "published", "Bus messages this node published (each may carry several events)"],
  ["tablemq_bus_events_published_total", "publishedEvents", "Events this node published to the other nodes"],
  ["tablemq_bus_messages_received_total", "received", "Bus messages received from other nodes"],
  ["tablemq_bus_events_dropped_total", "dropped", "Events not published (the bus was down): the other nodes poll"],
  ["tablemq_bus_overflows_total", "overflows", "Times received events overflowed their queue and every table polled instead"],
  ["tablemq_bus_reconnects_total", "reconnects", "Times a bus connection came back after it was lost"],
];

/** This node among the others: live nodes, the bus's state and traffic. */
function clusterMetrics(registers: Registry[], cluster: ClusterNode): void {
  new Gauge({
    name: "tablemq_nodes",
    help: "Live tablemq nodes on this database, this one included",
    registers,
    collect() {
      this.set(cluster.view().nodes);
    },
  });
  new Gauge({
    name: "tablemq_bus_up",
    help: "1 while the Redis bus is up, 0 while it is down or connecting, absent without TABLEMQ_REDIS_URL",
    registers,
    collect() {
      const { bus } = cluster.view();
      this.reset();
      if (bus.state !== "off") this.set(bus.state === "up" ? 1 : 0);
    },
  });
  for (const [name, field, help] of BUS_COUNTERS) {
    let last = 0;
    new Counter({
      name,
      help,
      registers,
      collect() {
        const value = cluster.busStats?.[field] ?? 0;
        if (value > last) this.inc(value - last);
        last = value;
      },
    });
  }
}

/**
 * Per webhook (labels table, webhook), read at scrape time: POSTs by result, messages delivered, whether
 * the destination is up, and the messages it holds. A deleted webhook's series go at the next scrape.
 */
function webhookMetrics(registers: Registry[], reports: () => WebhookReport[]): void {
  const labelNames = ["table", "webhook"] as const;
  const mirrored = (
    name: string,
    help: string,
    extra: string[],
    values: (c: WebhookCounters) => Array<[Record<string, string>, number]>,
  ) => {
    const seen = new Map<string, { labels: Record<string, string>; value: number }>();
    new Counter({
      name,
      help,
      labelNames: [...labelNames, ...extra],
      registers,
      collect() {
        const live = new Set<string>();
        for (const r of reports()) {
          for (const [more, value] of values(r.counters)) {
            const labels = { table: r.table, webhook: r.name, ...more };
            const key = JSON.stringify(labels);
            live.add(key);
            const last = seen.get(key)?.value ?? 0;
            // Lower than last time: deleted and made again, counting from 0.
            const delta = value >= last ? value - last : value;
            if (delta > 0) this.inc(labels, delta);
            seen.set(key, { labels, value });
          }
        }
        for (const [key, { labels }] of seen) {
          if (live.has(key)) continue;
          this.remove(labels);
          seen.delete(key);
        }
      },
    });
  };
  mirrored(
    "tablemq_webhook_deliveries_total",
    "Webhook POSTs by result: ok (2xx) or failed (other status, timeout, network error)",
    ["result"],
    (c) => [
      [{ result: "ok" }, c.deliveredBatches],
      [{ result: "failed" }, c.failedBatches],
    ],
  );
  mirrored("tablemq_webhook_messages_delivered_total", "Messages delivered by webhook POSTs answered 2xx", [], (c) => [
    [{}, c.deliveredMessages],
  ]);
  const gauge = (name: string, help: string, read: (r: WebhookReport) => number) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const r of reports()) this.set({ table: r.table, webhook: r.name }, read(r));
      },
    });
  gauge("tablemq_webhook_up", "1 while the webhook destination is up, 0 while it is down (being retried)", (r) =>
    r.status.state === "up" ? 1 : 0,
  );
  gauge("tablemq_webhook_held_messages", "Messages a webhook holds: sent to it and not yet acked", (r) => r.status.held);
}

/**
 * The embedded store's statements, read at scrape time (store/sqlite/timing.ts): each runs synchronously on
 * the thread that holds SQLite (the server's event loop, or the store's worker thread), so their longest time
 * is how long SQLite held that thread. `take` gives the figures and starts a new window for the longest; one
 * take serves every metric of a scrape.
 */
function sqliteMetrics(registers: Registry[], take: () => Promise<StatementTimes>): void {
  let taken: { at: number; times: Promise<StatementTimes> } | undefined;
  const read = () => {
    if (!taken || Date.now() - taken.at > 1_000) taken = { at: Date.now(), times: take() };
    return taken.times;
  };
  const mirror = (name: string, help: string, value: (t: StatementTimes) => number) => {
    let last = 0;
    new Counter({
      name,
      help,
      registers,
      async collect() {
        const v = value(await read());
        if (v > last) this.inc(v - last);
        last = v;
      },
    });
  };
  // The gauge first: the take it makes is the scrape's (the counters read the same one).
  new Gauge({
    name: "tablemq_sqlite_statement_max_seconds",
    help: "The longest SQLite statement since the previous scrape (a commit includes its fsync)",
    registers,
    async collect() {
      taken = undefined;
      this.set((await read()).maxMs / 1000);
    },
  });
  mirror("tablemq_sqlite_statements_total", "SQLite statements run", (t) => t.count);
  mirror("tablemq_sqlite_statement_seconds_total", "Time SQLite statements held their thread", (t) => t.totalMs / 1000);
  const seen = SLOW_MS.map(() => 0);
  new Counter({
    name: "tablemq_sqlite_statements_slower_total",
    help: "SQLite statements that took longer than `than` seconds",
    labelNames: ["than"],
    registers,
    async collect() {
      const t = await read();
      SLOW_MS.forEach((ms, i) => {
        const value = t.slower[i]!;
        if (value > seen[i]!) this.inc({ than: String(ms / 1000) }, value - seen[i]!);
        seen[i] = value;
      });
    },
  });
}
