/**
 * pg-boss 10 on PostgreSQL as its docs show: insert() for a batch (one INSERT statement, one commit), a
 * polling worker (work() with batchSize = prefetch at the smallest polling interval pg-boss allows, 0.5 s)
 * whose handler hands the payloads on and returns, which completes the jobs.
 */
import { createRequire } from "node:module";
import PgBoss from "pg-boss";
import type { ServerProcesses } from "../lib/cpu.js";
import type { BenchPayload } from "../lib/payload.js";
import type { Adapter, AdapterFactory, AdapterOptions, Consumer, Producer } from "../lib/types.js";
import { probe } from "../lib/probe.js";
import { Unavailable } from "../lib/types.js";

export const PGBOSS_URL = process.env.PGBOSS_BENCH_URL ?? "postgres://root@127.0.0.1:5432/test";

/** The job's data is the payload object itself (pg-boss stores it as JSON). */
type Data = BenchPayload;

/** pg-boss's default schema. */
const SCHEMA = "pgboss";

/** The smallest pollingIntervalSeconds pg-boss accepts. */
const POLLING_INTERVAL_SECONDS = 0.5;

/**
 * pg-boss's worker loop waits out the rest of the polling interval after every fetch, even a full one, so one
 * worker moves at most batchSize jobs per 0.5 s. When a fetch comes back full (a backlog) the handler calls
 * notifyWorker() (public API) so the worker fetches again at once instead of sleeping; an empty or partial
 * fetch still waits for the next poll, as pg-boss does by default. pg-boss does not await the completion of a
 * batch before its next fetch, so with this on up to two batches (2 x prefetch) can be active for a moment.
 * Set it to false for pg-boss's plain polling (then one consumer tops out at prefetch / 0.5 s messages/s).
 */
const REFETCH_WHEN_FULL = true;

class PgBossAdapter implements Adapter {
  readonly name = "pg-boss";
  /** Refined by version()/prepare() from the server's settings. */
  durability = "PostgreSQL (synchronous_commit read at run time)";

  constructor(private readonly opts: AdapterOptions) {}

  async version(): Promise<string> {
    const boss = await this.start();
    try {
      await this.describe(boss);
      const { rows } = await boss.getDb().executeSql("SHOW server_version", []);
      return `pg-boss ${clientVersion()}, PostgreSQL ${(rows[0] as { server_version: string }).server_version}`;
    } finally {
      await boss.stop({ graceful: false });
    }
  }

  async prepare(): Promise<void> {
    const boss = await this.start();
    try {
      await this.describe(boss);
      await dropQueue(boss, this.opts.queue);
      await boss.createQueue(this.opts.queue);
    } finally {
      await boss.stop({ graceful: false });
    }
  }

  /** PostgreSQL (every backend process): its CPU time is read around each workload. */
  serverProcesses(): Record<string, ServerProcesses> {
    return { postgresql: { comms: ["postgres"] } };
  }

  async cleanup(): Promise<void> {
    let boss: PgBoss;
    try {
      boss = await this.start();
    } catch {
      return;
    }
    try {
      await dropQueue(boss, this.opts.queue);
    } finally {
      await boss.stop({ graceful: false });
    }
  }

  async producer(): Promise<Producer> {
    const boss = await this.start();
    const name = this.opts.queue;
    return {
      async publish(payloads) {
        // One multi-row INSERT (json_to_recordset) in its own implicit transaction: resolves after COMMIT.
        await boss.insert(payloads.map((data) => ({ name, data })));
      },
      async close() {
        await boss.stop({ graceful: false });
      },
    };
  }

  async consumer(onMessage: (payload: BenchPayload) => void): Promise<Consumer> {
    const boss = await this.start();
    const batchSize = this.opts.prefetch;
    let workerId = "";
    workerId = await boss.work<Data>(this.opts.queue, { batchSize, pollingIntervalSeconds: POLLING_INTERVAL_SECONDS }, async (jobs) => {
      for (const job of jobs) onMessage(job.data);
      if (REFETCH_WHEN_FULL && jobs.length === batchSize) boss.notifyWorker(workerId);
      // Returning completes every job of the batch (one UPDATE).
    });
    return {
      async close() {
        // Graceful: waits for a batch still in the handler, then closes the pool (resolves once closed).
        await boss.stop({ graceful: true, timeout: 5_000 });
      },
    };
  }

  private async describe(boss: PgBoss): Promise<void> {
    const { rows } = await boss
      .getDb()
      .executeSql("SELECT current_setting('synchronous_commit') AS sc, current_setting('fsync') AS fs", []);
    const { sc, fs } = rows[0] as { sc: string; fs: string };
    this.durability = `PostgreSQL, synchronous_commit=${sc}, fsync=${fs}${sc === "on" && fs === "on" ? " (WAL flushed at every commit)" : ""}`;
  }

  private async start(): Promise<PgBoss> {
    const url = new URL(PGBOSS_URL);
    await probe("pg-boss", url.hostname, Number(url.port || 5432));
    const boss = new PgBoss({ connectionString: PGBOSS_URL, schedule: false });
    boss.on("error", (err) => console.error(`pg-boss: ${err.message}`));
    try {
      await boss.start();
    } catch (err) {
      await boss.stop({ graceful: false }).catch(() => {});
      throw new Unavailable(`pg-boss: PostgreSQL at ${url.host}${url.pathname} is not usable (${(err as Error).message})`);
    }
    return boss;
  }
}

/**
 * deleteQueue() in pg-boss 10 fails with a foreign-key violation (q_fkey) while the queue's partition still
 * holds jobs, completed ones included (timgit/pg-boss#514, #553: fixed in v11, not back-ported), so the
 * partition is emptied first.
 */
async function dropQueue(boss: PgBoss, name: string): Promise<void> {
  const db = boss.getDb();
  const { rows } = await db.executeSql(`SELECT partition_name FROM ${SCHEMA}.queue WHERE name = $1`, [name]);
  const partition = (rows[0] as { partition_name?: string } | undefined)?.partition_name;
  if (partition) await db.executeSql(`TRUNCATE ${SCHEMA}."${partition.replace(/"/g, '""')}"`, []);
  await boss.deleteQueue(name);
}

function clientVersion(): string {
  return (createRequire(import.meta.url)("pg-boss/package.json") as { version: string }).version;
}

const factory: AdapterFactory = (opts) => new PgBossAdapter(opts);
export default factory;
