/**
 * multi-node (tablemq only; issue 25): several `tablemq serve` processes on one database.
 *
 * Throughput: paired rounds, as pairs.ts pairs the systems. Each round runs w1-e2e (the same producers,
 * consumers and messages as the w1-e2e workload) on one node and on two nodes of one database woken by the
 * Redis bus, half of the producers and half of the consumers on each, back to back, in an order that swaps
 * every round; the ratio two ÷ one is taken within each round and the median over the rounds counts, so
 * the machine's drift cancels. The one node runs as a single node is deployed: alone on its database, with
 * no Redis. Both configurations share the load generators (kept warm since the system's warm-up) and their
 * servers are started for this workload, each on a database of its own named after the run, and first get
 * the same untimed warm-up per node (so the pair runs twice as many warm-up messages: each of its nodes
 * sees half). Each run counts duplicates (a message delivered twice: the consumers ack every delivery at
 * once, so a second delivery is a second node's within the ack wait) and lost messages, and reads from
 * every node's /metrics the claims another node won, the polls, and the bus traffic: what contention costs.
 * Deliveries are counted by the payload's key (producer and sequence number): each is enqueued once, as one
 * message with its own id, so a key received twice is an id delivered twice.
 *
 * Latency: cross-node w2, one producer sending single messages at w2's rate through node A and one
 * subscriber on node B, with the Redis bus (A's commit wakes B) and without it (B finds A's rows at its
 * next poll, at most TABLEMQ_PEER_POLL_MS apart), each pair on a database of its own.
 *
 * The servers are stopped and the databases dropped when the workload ends, whether or not it failed.
 */
import { createConnection } from "mysql2/promise";
import { medianRatio } from "./pairs.js";
import { metricSum, scrape } from "./prometheus.js";
import type { ServerProcesses } from "./cpu.js";
import { type ServerProcess, stopServerProcess } from "./server-process.js";
import type { Delivery } from "./stats.js";
import { consumersOf, type E2EResult, PRODUCERS, type RunContext, type W2Result, w1EndToEnd, w2Latency } from "./workloads.js";
import { BENCH_TABLE_OPTIONS, benchDatabaseUrl, createDatabase, dropDatabase, dropTable, startServer } from "../systems/tablemq.js";

/** The Redis of the bus (TABLEMQ_BENCH_REDIS_URL; the local one by default). */
export const BENCH_REDIS_URL = process.env.TABLEMQ_BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
/** The server's default TABLEMQ_PEER_POLL_MS, which the nodes without the bus run with. */
export const PEER_POLL_MS = 1_000;
const READY_TIMEOUT_MS = 30_000;

/** What a run cost on the nodes' side, summed over the nodes (read from /metrics around the run). */
export interface NodeCounters {
  /** tablemq_claims_lost_total of the run's table: rows read due here whose claim another node won. */
  claimsLost: number;
  /** tablemq_polls_total of the run's table. */
  polls: number;
  busEventsPublished: number;
  busMessagesReceived: number;
}

/** MariaDB's counters read around each run (the whole server): statements, rows, and bytes sent to clients. */
const DB_COUNTERS = {
  Com_select: "selects",
  Com_update: "updates",
  Rows_read: "rowsRead",
  Rows_sent: "rowsSent",
  Handler_update: "rowsUpdated",
  Bytes_sent: "bytesSent",
} as const;
export type DbCounters = Record<(typeof DB_COUNTERS)[keyof typeof DB_COUNTERS], number>;

/** One w1-e2e on one configuration. */
export interface NodesRun extends Delivery, NodeCounters {
  perSec: number;
  cpu: E2EResult["cpu"];
  /**
   * Per message delivered, MariaDB's counters (the whole server's): SELECT and UPDATE statements (Com_select,
   * Com_update), rows read, rows sent to clients (a poll's rows reach tablemq), rows updated (Handler_update),
   * and bytes sent to clients.
   */
  db: DbCounters;
}

export type Configuration = "one" | "two";

export interface MultiNodeRound {
  order: Configuration[];
  /** null: that run failed (see errors). */
  one: NodesRun | null;
  two: NodesRun | null;
}

export interface CrossNodeLatency extends Delivery, NodeCounters {
  publishToReceiveMs: W2Result["publishToReceiveMs"];
  enqueueMs: W2Result["enqueueMs"];
}

export interface MultiNodeResult {
  messages: number;
  producers: number;
  consumers: number;
  /** Untimed w1-e2e runs per node before the rounds, and their messages. */
  warmup: { runs: number; messages: number };
  rounds: MultiNodeRound[];
  /** two ÷ one msg/s, per round (null where either failed), and their median. */
  ratios: Array<number | null>;
  medianRatio: number;
  /** Cross-node w2: rate (msg/s), the table's poll interval, the nodes' peer poll interval; with and without the bus. */
  latency: {
    ratePerSec: number;
    pollIntervalMs: number;
    peerPollMs: number;
    redis: CrossNodeLatency | { error: string };
    noRedis: CrossNodeLatency | { error: string };
  };
  /** Over every run of the workload (warm-up, rounds, latency): what --check fails on. */
  missing: number;
  duplicates: number;
  claimsLost: number;
  errors: string[];
}

/** tablemq servers on a database of their own, made for them and dropped after. */
class NodeGroup {
  readonly database: string;
  readonly servers: ServerProcess[] = [];

  constructor(
    readonly name: string,
    private readonly count: number,
    private readonly redisUrl: string | undefined,
    runId: string,
  ) {
    this.database = `tablemq_bench_mn_${runId}_${name}`;
  }

  get urls(): string[] {
    return this.servers.map((s) => s.url);
  }

  /** "pid 123 at http://…, …", for the log (a profile's file name has the pid). */
  describe(): string {
    return this.servers.map((s) => `pid ${s.child.pid} at ${s.url}`).join(", ");
  }

  /** The group's servers, MariaDB and (with the bus) Redis: their CPU is read around each run. */
  processes(): Record<string, ServerProcesses> {
    return {
      tablemq: { pids: this.servers.flatMap((s) => (s.child.pid ? [s.child.pid] : [])) },
      mariadb: { comms: ["mariadbd"] },
      ...(this.redisUrl ? { redis: { comms: ["redis-server"] } } : {}),
    };
  }

  /** Makes the database, starts the servers, and waits until each sees the others as it should. */
  async start(): Promise<void> {
    await createDatabase(this.database);
    const env = { TABLEMQ_REDIS_URL: this.redisUrl ?? "", TABLEMQ_PEER_POLL_MS: String(PEER_POLL_MS) };
    await settled(
      Array.from({ length: this.count }, async () => {
        this.servers.push(await startServer({ databaseUrl: benchDatabaseUrl(this.database), env }));
      }),
    );
    const wakeups = this.count === 1 ? "alone" : this.redisUrl ? "bus" : "poll";
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (const url of this.urls) {
      for (;;) {
        const ready = (await (await fetch(`${url}/readyz`)).json()) as { cluster?: { nodes: number; wakeups: string } };
        if (ready.cluster?.nodes === this.count && ready.cluster.wakeups === wakeups) break;
        if (Date.now() > deadline) {
          throw new Error(
            `${this.name}: ${url} is not ready as ${this.count} node(s) with wake-ups by ${wakeups}${this.redisUrl ? ` (does the bus's Redis at ${this.redisUrl} answer? TABLEMQ_BENCH_REDIS_URL)` : ""}: ${JSON.stringify(ready)}`,
          );
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Creates `table` through the first node and waits until every node serves it. */
  async freshTable(table: string): Promise<void> {
    const put = await fetch(`${this.urls[0]}/v1/tables/${table}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(BENCH_TABLE_OPTIONS),
    });
    if (put.status !== 201) throw new Error(`${this.name}: could not create the table ${table}: ${put.status} ${await put.text()}`);
    // A node picks up a table made elsewhere when asked for it (or at the bus's event, or its schema refresh).
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (const url of this.urls.slice(1)) {
      while ((await fetch(`${url}/v1/tables/${table}`)).status !== 200) {
        if (Date.now() > deadline) throw new Error(`${this.name}: ${url} does not serve the table ${table}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  async dropTable(table: string): Promise<void> {
    for (const url of this.urls) await dropTable(url, table); // the first drops it; the others forget it
  }

  /** The counters of `table` and of the bus, summed over the nodes. */
  async counters(table: string): Promise<NodeCounters> {
    const texts = await Promise.all(this.urls.map(scrape));
    const sum = (name: string, labels?: Record<string, string>) => texts.reduce((a, t) => a + metricSum(t, name, labels), 0);
    return {
      claimsLost: sum("tablemq_claims_lost_total", { table }),
      polls: sum("tablemq_polls_total", { table }),
      busEventsPublished: sum("tablemq_bus_events_published_total"),
      busMessagesReceived: sum("tablemq_bus_messages_received_total"),
    };
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.splice(0).map(stopServerProcess));
    await dropDatabase(this.database);
  }
}

const minus = (a: NodeCounters, b: NodeCounters): NodeCounters => ({
  claimsLost: a.claimsLost - b.claimsLost,
  polls: a.polls - b.polls,
  busEventsPublished: a.busEventsPublished - b.busEventsPublished,
  busMessagesReceived: a.busMessagesReceived - b.busMessagesReceived,
});

async function dbCounters(): Promise<DbCounters> {
  const db = await createConnection(benchDatabaseUrl(""));
  try {
    const [rows] = await db.query("SHOW GLOBAL STATUS WHERE Variable_name IN (?)", [Object.keys(DB_COUNTERS)]);
    const out: DbCounters = { selects: NaN, updates: NaN, rowsRead: NaN, rowsSent: NaN, rowsUpdated: NaN, bytesSent: NaN };
    for (const r of rows as Array<{ Variable_name: keyof typeof DB_COUNTERS; Value: string }>)
      out[DB_COUNTERS[r.Variable_name]] = Number(r.Value);
    return out;
  } finally {
    await db.end();
  }
}

let tableSeq = 0;
const tableName = (group: NodeGroup) => `bench_mn_${group.name}_${++tableSeq}_${Date.now().toString(36)}`;

/** One w1-e2e of `messages` on a fresh table of `group`, its producers and consumers spread over the nodes. */
async function e2eOn(ctx: RunContext, group: NodeGroup, messages: number): Promise<NodesRun> {
  const queue = tableName(group);
  await group.freshTable(queue);
  try {
    const opts = { queue, prefetch: 100, consumers: consumersOf("w1-e2e"), endpoint: group.urls[0]! };
    const [before, dbBefore] = [await group.counters(queue), await dbCounters()];
    const r = await w1EndToEnd({
      ...ctx,
      opts,
      sizes: { ...ctx.sizes, w1Messages: messages },
      servers: () => group.processes(),
      placement: { producers: group.urls, consumers: group.urls },
    });
    const [after, dbAfter] = [await group.counters(queue), await dbCounters()];
    const perMessage = (k: keyof DbCounters) => (dbAfter[k] - dbBefore[k]) / Math.max(1, r.unique);
    return {
      perSec: r.e2ePerSec,
      cpu: r.cpu,
      db: Object.fromEntries(Object.values(DB_COUNTERS).map((k) => [k, perMessage(k)])) as DbCounters,
      ...minus(after, before),
      ...delivery(r),
    };
  } finally {
    await group.dropTable(queue);
  }
}

/** Cross-node w2 on a fresh table of `group`: the producer on its first node, one subscriber on its second. */
async function crossNode(ctx: RunContext, group: NodeGroup): Promise<CrossNodeLatency> {
  const queue = tableName(group);
  await group.freshTable(queue);
  try {
    const [a, b] = group.urls as [string, string];
    const before = await group.counters(queue);
    const r = await w2Latency(
      { ...ctx, opts: { queue, prefetch: 100, consumers: 1, endpoint: a }, placement: { producers: [a], consumers: [b] } },
      1,
    );
    return {
      publishToReceiveMs: r.publishToReceiveMs,
      enqueueMs: r.enqueueMs,
      ...minus(await group.counters(queue), before),
      ...delivery(r),
    };
  } finally {
    await group.dropTable(queue);
  }
}

/** Waits for every promise (so nothing started is left unknown to stop()), then throws the first failure. */
async function settled(work: Array<Promise<void>>): Promise<void> {
  const failed = (await Promise.allSettled(work)).find((r) => r.status === "rejected");
  if (failed) throw failed.reason;
}

const delivery = ({ unique, missing, duplicates, stopped }: Delivery): Delivery => ({
  unique,
  missing,
  duplicates,
  ...(stopped ? { stopped } : {}),
});

export async function multiNode(ctx: RunContext, log: (msg: string) => void): Promise<MultiNodeResult> {
  const { sizes } = ctx;
  const runId = `${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36)}`;
  const out: MultiNodeResult = {
    messages: sizes.w1Messages,
    producers: PRODUCERS,
    consumers: consumersOf("w1-e2e"),
    warmup: { runs: sizes.warmupRounds, messages: sizes.warmupMessages },
    rounds: [],
    ratios: [],
    medianRatio: NaN,
    latency: {
      ratePerSec: sizes.w2Rate,
      pollIntervalMs: BENCH_TABLE_OPTIONS.pollIntervalMs,
      peerPollMs: PEER_POLL_MS,
      redis: { error: "not run" },
      noRedis: { error: "not run" },
    },
    missing: 0,
    duplicates: 0,
    claimsLost: 0,
    errors: [],
  };
  const tally = (r: Delivery & { claimsLost: number }) => {
    out.missing += r.missing;
    out.duplicates += r.duplicates;
    out.claimsLost += r.claimsLost;
  };
  const groups = { one: new NodeGroup("one", 1, undefined, runId), two: new NodeGroup("two", 2, BENCH_REDIS_URL, runId) };
  const polled = new NodeGroup("polled", 2, undefined, runId);
  try {
    await settled([groups.one.start(), groups.two.start()]);
    log(`multi-node: one node ${groups.one.describe()}; two nodes ${groups.two.describe()}`);
    // Per node the same warm-up: the pair's nodes each see half of a run's messages.
    for (const [name, runs] of [
      ["one", sizes.warmupRounds],
      ["two", 2 * sizes.warmupRounds],
    ] as const) {
      for (let i = 0; i < runs; i++) {
        const r = await e2eOn(ctx, groups[name], sizes.warmupMessages);
        tally(r);
        log(`multi-node warm-up ${name} ${i + 1}/${runs}: ${Math.round(r.perSec)} msg/s, ${r.missing} lost, ${r.duplicates} duplicates`);
      }
    }
    for (let round = 0; round < sizes.multiNodeRounds; round++) {
      const order: Configuration[] = round % 2 ? ["two", "one"] : ["one", "two"];
      const entry: MultiNodeRound = { order, one: null, two: null };
      for (const name of order) {
        try {
          const r = await e2eOn(ctx, groups[name], sizes.w1Messages);
          tally(r);
          entry[name] = r;
          log(
            `multi-node round ${round + 1}/${sizes.multiNodeRounds} ${name}: ${Math.round(r.perSec)} msg/s, ${r.missing} lost, ${r.duplicates} duplicates, ${r.claimsLost} claims lost, ${r.polls} polls`,
          );
        } catch (err) {
          out.errors.push(`round ${round + 1} ${name}: ${(err as Error).message.split("\n")[0]}`);
          log(`multi-node round ${round + 1} ${name} failed: ${(err as Error).message}`);
        }
      }
      out.rounds.push(entry);
    }
    const ratio = medianRatio(
      out.rounds.map((r) => r.two?.perSec ?? null),
      out.rounds.map((r) => r.one?.perSec ?? null),
    );
    out.ratios = ratio.ratios;
    out.medianRatio = ratio.median;
    await groups.one.stop();
    out.latency.redis = await latencyOn(ctx, groups.two, "with Redis", out, tally, log);
    await groups.two.stop();
    await polled.start();
    log(`multi-node: two nodes without Redis ${polled.describe()}`);
    out.latency.noRedis = await latencyOn(ctx, polled, "without Redis", out, tally, log);
  } finally {
    for (const g of [groups.one, groups.two, polled]) {
      await g.stop().catch((err) => log(`multi-node: stopping ${g.name}: ${(err as Error).message}`));
    }
  }
  return out;
}

async function latencyOn(
  ctx: RunContext,
  group: NodeGroup,
  what: string,
  out: MultiNodeResult,
  tally: (r: CrossNodeLatency) => void,
  log: (msg: string) => void,
): Promise<CrossNodeLatency | { error: string }> {
  try {
    const r = await crossNode(ctx, group);
    tally(r);
    const l = r.publishToReceiveMs;
    log(
      `multi-node cross-node w2 ${what}: p50 ${l.p50.toFixed(2)} ms, p99 ${l.p99.toFixed(2)} ms, ${r.missing} lost, ${r.duplicates} duplicates`,
    );
    return r;
  } catch (err) {
    const error = (err as Error).message.split("\n")[0]!;
    out.errors.push(`cross-node w2 ${what}: ${error}`);
    log(`multi-node cross-node w2 ${what} failed: ${(err as Error).message}`);
    return { error };
  }
}
