import { type ChildProcess, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { createConnection } from "mysql2/promise";
import WebSocket from "ws";
import { TablemqClient } from "../../src/client/index.js";
import type { ServerProcesses } from "../lib/cpu.js";
import type { Adapter, AdapterFactory, AdapterOptions, Consumer, Producer } from "../lib/types.js";
import { Unavailable } from "../lib/types.js";

const CLI = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));
export const BENCH_DB_URL = process.env.TABLEMQ_BENCH_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/tablemq_bench";

/** The `tablemq serve` process of this run (in the runner process), shared by every workload. */
let running: { child: ChildProcess; url: string } | undefined;

/** Table options for the benchmark: deliveries of up to 100, a 30 s ack wait, polls every second. */
export const BENCH_TABLE_OPTIONS = { ackWaitMs: 30_000, batchSize: 100, cacheSize: 10_000, pollIntervalMs: 1_000 };

/**
 * tablemq as users run it: the server in its own process (`tablemq serve`), producers POSTing batches over
 * HTTP (one request per batch, resolved after the commit), consumers on the WebSocket acking each delivered
 * batch with one ack frame.
 */
class TablemqAdapter implements Adapter {
  readonly name = "tablemq";
  durability = "MariaDB/InnoDB (settings read at run time)";

  constructor(private readonly opts: AdapterOptions) {}

  async version(): Promise<string> {
    const pkg = JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
    const conn = await createConnection(adminUrl());
    try {
      const [rows] = await conn.query(
        "SELECT VERSION() AS v, @@innodb_flush_log_at_trx_commit AS flush, @@sync_binlog AS sb, @@log_bin AS lb",
      );
      const r = (rows as Array<{ v: string; flush: number; sb: number; lb: number }>)[0]!;
      this.durability = `MariaDB/InnoDB, innodb_flush_log_at_trx_commit=${r.flush} (fsync per commit when 1), log_bin=${r.lb}, sync_binlog=${r.sb}; 2xx only after COMMIT`;
      return `tablemq ${pkg.version}, ${r.v}`;
    } finally {
      await conn.end();
    }
  }

  async prepare(): Promise<void> {
    let conn;
    try {
      conn = await createConnection(adminUrl());
    } catch (err) {
      throw new Unavailable(`tablemq: the database at ${adminUrl()} does not answer (${(err as Error).message})`);
    }
    await conn.query(`CREATE DATABASE IF NOT EXISTS \`${new URL(BENCH_DB_URL).pathname.slice(1)}\``);
    await conn.end();
    // One server for the whole run, as the peers' servers are: started by the first workload, warm for the rest.
    if (!running || running.child.exitCode !== null) running = await startServer();
    this.opts.endpoint = running.url;
    const url = running.url;
    await fetch(`${url}/v1/tables/${this.opts.queue}`, { method: "DELETE" });
    const res = await fetch(`${url}/v1/tables/${this.opts.queue}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(BENCH_TABLE_OPTIONS),
    });
    if (res.status !== 201) throw new Error(`tablemq: could not create the table: ${res.status} ${await res.text()}`);
  }

  async cleanup(): Promise<void> {
    if (this.opts.endpoint) await fetch(`${this.opts.endpoint}/v1/tables/${this.opts.queue}`, { method: "DELETE" }).catch(() => {});
  }

  async shutdown(): Promise<void> {
    const server = running?.child;
    running = undefined;
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server.once("exit", r));
      server.kill("SIGTERM");
      await exited;
    }
  }

  /** The tablemq server and MariaDB: their CPU time is read around each workload. */
  serverProcesses(): Record<string, ServerProcesses> {
    return { tablemq: { pids: running?.child.pid ? [running.child.pid] : [] }, mariadb: { comms: ["mariadbd"] } };
  }

  async serverPeakRss(): Promise<number | undefined> {
    const pid = running?.child.pid;
    if (!pid) return undefined;
    const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
    const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
    return kb ? Number(kb) * 1024 : undefined;
  }

  async producer(): Promise<Producer> {
    // tablemq's own client, as its README shows. Its default transport is Node's http with keep-alive: undici's
    // fetch spent about 2.5× the client CPU per message (25–28 vs 9–12 µs in batches of 100), and on this
    // 2-core box every µs the load generators spend is taken from the server.
    const client = new TablemqClient({ url: this.endpoint() });
    const table = this.opts.queue;
    return {
      async publish(payloads) {
        await client.publish(table, payloads.map((p) => ({ payload: JSON.parse(p) as unknown })));
      },
      async close() {},
    };
  }

  async consumer(onMessage: (payload: string) => void): Promise<Consumer> {
    const ws = new WebSocket(`${this.endpoint().replace(/^http/, "ws")}/v1/tables/${this.opts.queue}/subscribe?maxInFlight=${this.opts.prefetch}`);
    // The handler goes on before the socket opens: frames can arrive in the same chunk as the upgrade.
    ws.on("message", (data) => {
      const frame = JSON.parse(data.toString()) as { type: string; messages?: Array<{ id: string; payload: unknown }> };
      if (frame.type !== "messages" || !frame.messages) return;
      const ids: string[] = [];
      for (const m of frame.messages) {
        onMessage(JSON.stringify(m.payload));
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

  private endpoint(): string {
    if (!this.opts.endpoint) throw new Error("tablemq: no endpoint (prepare() starts the server)");
    return this.opts.endpoint;
  }
}

function adminUrl(): string {
  const u = new URL(BENCH_DB_URL);
  u.pathname = "/";
  return u.toString();
}

/** `tablemq serve` in a process of its own; resolves with its URL. */
async function startServer(): Promise<{ child: ChildProcess; url: string }> {
  // TABLEMQ_BENCH_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the server.
  const nodeArgs = (process.env.TABLEMQ_BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, "--import", "tsx", CLI, "serve", "--port", "0", "--log-level", "warn", "--database-url", BENCH_DB_URL], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d) => {
      out += d.toString();
      const line = out.split("\n").find((l) => l.startsWith("http"));
      if (line) resolve(line.trim());
    });
    child.once("exit", (code) => reject(new Error(`tablemq serve exited with ${code}`)));
  });
  return { child, url };
}

const factory: AdapterFactory = (opts) => new TablemqAdapter(opts);
export default factory;
