import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { createConnection } from "mysql2/promise";
import WebSocket from "ws";
import { TablemqClient } from "../../src/client/index.js";
import { enqueue, HttpNotifier } from "../../src/sql/index.js";
import { peakRss, type ServerProcesses } from "../lib/cpu.js";
import { BENCH_LOG_LEVEL, serverNodeFlags, words } from "../lib/server-flags.js";
import type { BenchPayload } from "../lib/payload.js";
import { NO_WAKE } from "../lib/workloads.js";
import { metricSum, scrape } from "../lib/prometheus.js";
import { type ServerProcess, startServerProcess, stopServerProcess } from "../lib/server-process.js";
import type { Adapter, AdapterFactory, AdapterOptions, Consumer, Producer } from "../lib/types.js";
import { Unavailable } from "../lib/types.js";

const CLI = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
export const BENCH_DB_URL = process.env.TABLEMQ_BENCH_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/tablemq_bench";

/** The store a tablemq system runs on: "tablemq" is MySQL (MariaDB here), "tablemq-sqlite" the embedded store. */
type Store = "mysql" | "sqlite";

/** The `tablemq serve` process of this run per store (in the runner process), shared by every workload. */
const running = new Map<Store, ServerProcess>();

/** The embedded store's file lives in a directory of this run's own, removed when its server stops. */
let sqliteDir: string | undefined;
function sqliteUrl(): string {
  sqliteDir ??= mkdtempSync(join(tmpdir(), "tablemq-bench-sqlite-"));
  return `sqlite:${join(sqliteDir, "bench.db")}`;
}

/** Table options for the benchmark: deliveries of up to 100, a 30 s ack wait, polls every second. */
export const BENCH_TABLE_OPTIONS = { ackWaitMs: 30_000, batchSize: 100, cacheSize: 10_000, pollIntervalMs: 1_000 };

/**
 * tablemq as users run it: the server in its own process (`tablemq serve`), producers POSTing batches over
 * HTTP (one request per batch, resolved after the commit), consumers on the WebSocket acking each delivered
 * batch with one ack frame.
 */
class TablemqAdapter implements Adapter {
  readonly name: string;
  durability = "MariaDB/InnoDB (settings read at run time)";

  constructor(
    private readonly opts: AdapterOptions,
    private readonly store: Store = "mysql",
    /** How producers enqueue: over HTTP, or with tablemq/sql in transactions of their own (tablemq-txn). */
    private readonly enqueue: "http" | "sql" = "http",
  ) {
    this.name = store === "sqlite" ? "tablemq-sqlite" : enqueue === "sql" ? "tablemq-txn" : "tablemq";
    if (store === "sqlite") this.durability = SQLITE_DURABILITY;
  }

  async version(): Promise<string> {
    const pkg = await readPackage();
    if (this.store === "sqlite") {
      const db = new Database(":memory:");
      try {
        return `tablemq ${pkg.version}, SQLite ${(db.prepare("SELECT sqlite_version() AS v").get() as { v: string }).v} (better-sqlite3)`;
      } finally {
        db.close();
      }
    }
    const conn = await createConnection(adminUrl());
    try {
      const [rows] = await conn.query(
        "SELECT VERSION() AS v, @@innodb_flush_log_at_trx_commit AS flush, @@sync_binlog AS sb, @@log_bin AS lb",
      );
      const r = (rows as Array<{ v: string; flush: number; sb: number; lb: number }>)[0]!;
      this.durability = `MariaDB/InnoDB, innodb_flush_log_at_trx_commit=${r.flush} (fsync per commit when 1), log_bin=${r.lb}, sync_binlog=${r.sb}; ${this.enqueue === "sql" ? "published = the producer's own transaction committed (tablemq/sql), then a wake over HTTP" : "2xx only after COMMIT"}`;
      return `tablemq ${pkg.version}, ${r.v}`;
    } finally {
      await conn.end();
    }
  }

  async prepare(): Promise<void> {
    if (this.store === "mysql") await ensureBenchDatabase();
    // One server for the whole run, as the peers' servers are: started by the first workload, warm for the rest.
    let server = running.get(this.store);
    if (!server || server.child.exitCode !== null) {
      // TABLEMQ_BENCH_SQLITE_THREAD=main|worker measures one against the other (unset: the server's default).
      const thread = process.env.TABLEMQ_BENCH_SQLITE_THREAD ?? "";
      server = await startServer(this.store === "sqlite" ? { databaseUrl: sqliteUrl(), env: { TABLEMQ_SQLITE_THREAD: thread } } : {});
      running.set(this.store, server);
    }
    this.opts.endpoint = server.url;
    await freshTable(server.url, this.opts.queue);
  }

  async cleanup(): Promise<void> {
    if (this.opts.endpoint) await dropTable(this.opts.endpoint, this.opts.queue);
  }

  async shutdown(): Promise<void> {
    const server = running.get(this.store);
    running.delete(this.store);
    await stopServerProcess(server);
    if (this.store === "sqlite" && sqliteDir) {
      rmSync(sqliteDir, { recursive: true, force: true });
      sqliteDir = undefined;
    }
  }

  /** The tablemq server, and MariaDB when it is the store: their CPU time is read around each workload. */
  serverProcesses(): Record<string, ServerProcesses> {
    const pid = running.get(this.store)?.child.pid;
    return this.store === "mysql" ? serverSide(pid) : { tablemq: { pids: pid ? [pid] : [] } };
  }

  serverPeakRss(): Promise<number | undefined> {
    return peakRss(running.get(this.store)?.child.pid);
  }

  /**
   * How long the server's event loop was held during a workload (prom-client's nodejs_eventloop_lag_max_seconds,
   * a window per scrape) and, on SQLite, by its statements (tablemq_sqlite_*: every statement runs on the event
   * loop, a commit with its fsync). Scraped before the workload (which starts the windows) and after it.
   */
  async aroundWorkload(): Promise<() => Promise<object>> {
    const url = running.get(this.store)?.url;
    if (!url) return async () => ({});
    const before = await scrape(url);
    return async () => {
      const after = await scrape(url);
      const delta = (name: string, labels: Record<string, string> = {}) => metricSum(after, name, labels) - metricSum(before, name, labels);
      const figures: Record<string, number> = { eventLoopMaxMs: metricSum(after, "nodejs_eventloop_lag_max_seconds") * 1000 };
      if (this.store === "sqlite") {
        const statements = delta("tablemq_sqlite_statements_total");
        Object.assign(figures, {
          sqliteStatements: statements,
          sqliteStatementMeanMs: statements > 0 ? (delta("tablemq_sqlite_statement_seconds_total") * 1000) / statements : 0,
          sqliteStatementMaxMs: metricSum(after, "tablemq_sqlite_statement_max_seconds") * 1000,
          sqliteStatementsOver1Ms: delta("tablemq_sqlite_statements_slower_total", { than: "0.001" }),
          sqliteStatementsOver5Ms: delta("tablemq_sqlite_statements_slower_total", { than: "0.005" }),
        });
      }
      return figures;
    };
  }

  async producer(): Promise<Producer> {
    if (this.enqueue === "sql") return this.sqlProducer();
    // tablemq's own client, as its README shows. Its default transport is Node's http with keep-alive: undici's
    // fetch spent about 2.5× the client CPU per message (25–28 vs 9–12 µs in batches of 100), and on this
    // 2-core box every µs the load generators spend is taken from the server.
    const client = new TablemqClient({ url: this.endpoint() });
    const table = this.opts.queue;
    return {
      async publish(payloads) {
        await client.publish(
          table,
          payloads.map((payload) => ({ payload })),
        );
      },
      async close() {},
    };
  }

  /**
   * An application's own connection (mysql2, as its README example): each batch is one transaction that
   * enqueues it with tablemq/sql and commits; then a wake (HttpNotifier) tells the server, which delivers it
   * at once instead of at its next poll. The publish resolves at the commit; the wake goes on meanwhile.
   */
  private async sqlProducer(): Promise<Producer> {
    const conn = await createConnection(BENCH_DB_URL);
    const notifier = new HttpNotifier({ url: this.endpoint() });
    const table = this.opts.queue;
    const waking = new Set<Promise<void>>();
    const quiet = this.opts.variant === NO_WAKE; // the txn-insert workload: the INSERT path alone
    let wakesFailed = 0;
    return {
      async publish(payloads) {
        await conn.beginTransaction();
        let sent;
        try {
          sent = await enqueue(
            conn,
            table,
            payloads.map((payload) => ({ payload })),
          );
          await conn.commit();
        } catch (err) {
          await conn.rollback();
          throw err;
        }
        if (quiet) return;
        // The commit is the publish; the wake is a hint the application need not wait for (as it would not).
        const wake: Promise<void> = notifier.notify(sent).then((ok) => {
          if (!ok) wakesFailed++;
          waking.delete(wake);
        });
        waking.add(wake);
      },
      async close() {
        await Promise.all(waking);
        await conn.end();
        if (wakesFailed > 0) throw new Error(`tablemq-txn: ${wakesFailed} wakes failed`);
      },
    };
  }

  consumer(onMessage: (payload: BenchPayload) => void): Promise<Consumer> {
    return ackingConsumer(
      `${this.endpoint().replace(/^http/, "ws")}/v1/tables/${this.opts.queue}/subscribe?maxInFlight=${this.opts.prefetch}`,
      onMessage,
    );
  }

  private endpoint(): string {
    if (!this.opts.endpoint) throw new Error("tablemq: no endpoint (prepare() starts the server)");
    return this.opts.endpoint;
  }
}

/** The processes of tablemq's server side whose CPU a workload counts: the server `pid` and MariaDB. */
export function serverSide(pid: number | undefined): Record<string, ServerProcesses> {
  return { tablemq: { pids: pid ? [pid] : [] }, mariadb: { comms: ["mariadbd"] } };
}

/** Creates the bench database when it is missing; Unavailable when MariaDB does not answer. */
export async function ensureBenchDatabase(): Promise<void> {
  let conn;
  try {
    conn = await createConnection(adminUrl());
  } catch (err) {
    throw new Unavailable(`tablemq: the database at ${adminUrl()} does not answer (${(err as Error).message})`);
  }
  try {
    await conn.query(`CREATE DATABASE IF NOT EXISTS \`${new URL(BENCH_DB_URL).pathname.slice(1)}\``);
  } finally {
    await conn.end();
  }
}

/** (Re)creates the table `queue`, empty and with BENCH_TABLE_OPTIONS, on the tablemq server at `url`. */
export async function freshTable(url: string, queue: string): Promise<void> {
  await dropTable(url, queue);
  const res = await fetch(`${url}/v1/tables/${queue}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(BENCH_TABLE_OPTIONS),
  });
  if (res.status !== 201) throw new Error(`tablemq: could not create the table ${queue}: ${res.status} ${await res.text()}`);
}

/** Drops the table `queue` on the tablemq server at `url`, if it is there (a failure is ignored). */
export async function dropTable(url: string, queue: string): Promise<void> {
  await fetch(`${url}/v1/tables/${queue}`, { method: "DELETE" }).catch(() => {});
}

/** BENCH_DB_URL's server with the database `name` instead (a run's own, e.g. the multi-node workload's). */
export function benchDatabaseUrl(name: string): string {
  const u = new URL(BENCH_DB_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Creates the database `name` on the bench's MariaDB; it must not exist yet (each run names its own). */
export async function createDatabase(name: string): Promise<void> {
  await adminQuery(`CREATE DATABASE \`${checkedDatabaseName(name)}\``);
}

/** Drops the database `name` on the bench's MariaDB, if it is there. */
export async function dropDatabase(name: string): Promise<void> {
  await adminQuery(`DROP DATABASE IF EXISTS \`${checkedDatabaseName(name)}\``);
}

const checkedDatabaseName = (name: string): string => {
  if (!/^[a-z0-9_]{1,64}$/.test(name)) throw new Error(`not a bench database name: ${JSON.stringify(name)}`);
  return name;
};

async function adminQuery(statement: string): Promise<void> {
  const conn = await createConnection(adminUrl());
  try {
    await conn.query(statement);
  } finally {
    await conn.end();
  }
}

function adminUrl(): string {
  const u = new URL(BENCH_DB_URL);
  u.pathname = "/";
  return u.toString();
}

async function readPackage(): Promise<{ version: string; scripts: { start: string } }> {
  return JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
    scripts: { start: string };
  };
}

/**
 * `tablemq serve` in a process of its own; resolves with its URL. With the Node flags `npm start` gives it
 * (README, "Running it"); then `nodeArgs`, by default TABLEMQ_BENCH_NODE_ARGS, e.g. "--cpu-prof
 * --cpu-prof-dir=/tmp/prof" to profile the server (a later flag wins over an earlier one). `cli` runs another
 * checkout's server (bench/tools/ab.ts); `env` is added to its environment (a variable set to "" counts as
 * unset); `databaseUrl` is the database it serves (default BENCH_DB_URL).
 */
export async function startServer({
  nodeArgs = words(process.env.TABLEMQ_BENCH_NODE_ARGS),
  cli = CLI,
  env,
  databaseUrl = BENCH_DB_URL,
}: { nodeArgs?: string[]; cli?: string; env?: Record<string, string>; databaseUrl?: string } = {}): Promise<ServerProcess> {
  const pkg = await readPackage();
  const args = [
    ...serverNodeFlags(pkg.scripts.start),
    ...nodeArgs,
    "--import",
    "tsx",
    cli,
    "serve",
    "--port",
    "0",
    "--log-level",
    BENCH_LOG_LEVEL,
    "--database-url",
    databaseUrl,
  ];
  return startServerProcess(args, "tablemq serve", env);
}

const factory: AdapterFactory = (opts) => new TablemqAdapter(opts);
export default factory;

/** tablemq with producers that enqueue in their own MySQL transactions (issue 26, tablemq/sql); the same server. */
export const txn: AdapterFactory = (opts) => new TablemqAdapter(opts, "mysql", "sql");

/** tablemq on its embedded SQLite store (issue 28), the same server, client and table options. */
export const sqlite: AdapterFactory = (opts) => new TablemqAdapter(opts, "sqlite");

/** What a 2xx means on the embedded store (src/store/sqlite/connect.ts). */
export const SQLITE_DURABILITY =
  "SQLite (embedded), WAL, synchronous=FULL: the WAL fsynced before each commit returns; 2xx only after COMMIT";

/**
 * A consumer on tablemq's WebSocket protocol (docs/API.md): each "messages" frame's payloads go to `onMessage`,
 * then one ack frame acks them all. node-floor's server speaks the same frames.
 */
export async function ackingConsumer(url: string, onMessage: (payload: BenchPayload) => void): Promise<Consumer> {
  const ws = new WebSocket(url);
  // The handler goes on before the socket opens: frames can arrive in the same chunk as the upgrade.
  ws.on("message", (data) => {
    const frame = JSON.parse(data.toString()) as { type: string; messages?: Array<{ id: string; payload: BenchPayload }> };
    if (frame.type !== "messages" || !frame.messages) return;
    const ids: string[] = [];
    for (const m of frame.messages) {
      onMessage(m.payload);
      ids.push(m.id);
    }
    ws.send(JSON.stringify({ type: "ack", ids }));
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  return {
    async close() {
      await new Promise<void>((resolve) => {
        ws.once("close", () => resolve());
        ws.close();
      });
    },
  };
}
