/**
 * BullMQ on Redis as its docs show: Queue.addBulk() for a batch (resolves once Redis has run the add script
 * for every job), a Worker with concurrency = prefetch whose processor hands the payload on and returns
 * (BullMQ then completes the job), completed jobs removed so Redis's memory stays flat.
 */
import { createRequire } from "node:module";
import { Queue, type RedisClient, Worker } from "bullmq";
import type { ServerProcesses } from "../lib/cpu.js";
import type { BenchPayload } from "../lib/payload.js";
import type { Adapter, AdapterFactory, AdapterOptions, Consumer, Producer } from "../lib/types.js";
import { probe } from "../lib/probe.js";
import { Unavailable } from "../lib/types.js";

export const REDIS_URL = process.env.REDIS_BENCH_URL ?? "redis://127.0.0.1:6379";

/** The job's data is the payload object itself (BullMQ encodes it). */
type Data = BenchPayload;

const JOB_OPTIONS = { removeOnComplete: true, removeOnFail: 1_000 };

class BullMqAdapter implements Adapter {
  readonly name = "bullmq";
  /** Refined by version()/prepare() from the server's persistence settings. */
  durability = "Redis (persistence settings read at run time)";

  constructor(private readonly opts: AdapterOptions) {}

  async version(): Promise<string> {
    const queue = await this.queue();
    try {
      await this.describe(await queue.client);
      return `bullmq ${clientVersion()}, Redis ${queue.redisVersion}`;
    } finally {
      await queue.close();
    }
  }

  async prepare(): Promise<void> {
    const queue = await this.queue();
    try {
      await this.describe(await queue.client);
      await queue.obliterate({ force: true });
    } finally {
      await queue.close();
    }
  }

  /** Redis: its CPU time is read around each workload. */
  serverProcesses(): Record<string, ServerProcesses> {
    return { redis: { comms: ["redis-server"] } };
  }

  async cleanup(): Promise<void> {
    let queue: Queue<Data>;
    try {
      queue = await this.queue();
    } catch {
      return;
    }
    try {
      await queue.obliterate({ force: true });
    } finally {
      await queue.close();
    }
  }

  async producer(): Promise<Producer> {
    const queue = await this.queue();
    return {
      async publish(payloads) {
        await queue.addBulk(payloads.map((data) => ({ name: "msg", data })));
      },
      async close() {
        await queue.close();
      },
    };
  }

  async consumer(onMessage: (payload: BenchPayload) => void): Promise<Consumer> {
    await probe("bullmq", connection().host, connection().port);
    let failure: Error | undefined;
    const worker = new Worker<Data>(
      this.opts.queue,
      async (job) => {
        onMessage(job.data);
      },
      { connection: connection(), concurrency: this.opts.prefetch, removeOnComplete: { count: 0 } },
    );
    worker.on("error", (err) => (failure ??= err));
    await worker.waitUntilReady();
    if (failure) throw failure;
    return {
      async close() {
        await worker.close();
      },
    };
  }

  private async describe(client: RedisClient): Promise<void> {
    try {
      // BullMQ's client type declares only the commands BullMQ uses; underneath it is an ioredis client.
      const raw = client as unknown as { config?: (op: "GET", key: string) => Promise<string[]> };
      if (typeof raw.config !== "function") throw new Error("no CONFIG on this client");
      const get = async (key: string) => (await raw.config!("GET", key))[1] ?? "";
      const [save, aof, fsync] = [await get("save"), await get("appendonly"), await get("appendfsync")];
      const rdb = save.trim() ? `RDB snapshots "${save}"` : "no RDB";
      this.durability =
        aof === "yes"
          ? `Redis AOF, appendfsync=${fsync} (${fsync === "always" ? "fsync per write" : fsync === "everysec" ? "fsync once a second" : "fsync left to the OS"}), ${rdb} (as configured here)`
          : save.trim()
            ? `Redis in memory, no AOF, ${rdb} (as configured here): a crash loses what came after the last snapshot`
            : "Redis in memory, no AOF/RDB (as configured here): a crash loses everything";
    } catch {
      this.durability = "Redis (persistence settings unreadable: CONFIG GET failed)";
    }
  }

  private async queue(): Promise<Queue<Data>> {
    await probe("bullmq", connection().host, connection().port);
    const queue = new Queue<Data>(this.opts.queue, { connection: connection(), defaultJobOptions: JOB_OPTIONS });
    let failure: Error | undefined;
    queue.on("error", (err) => (failure ??= err));
    try {
      await queue.waitUntilReady();
      if (failure) throw failure;
    } catch (err) {
      await queue.close().catch(() => {});
      throw new Unavailable(`bullmq: Redis at ${REDIS_URL} is not usable (${(err as Error).message})`);
    }
    return queue;
  }
}

function connection(): { host: string; port: number; db?: number } {
  const url = new URL(REDIS_URL);
  const db = Number(url.pathname.slice(1));
  return { host: url.hostname, port: Number(url.port || 6379), ...(db ? { db } : {}) };
}

function clientVersion(): string {
  return (createRequire(import.meta.url)("bullmq/package.json") as { version: string }).version;
}

const factory: AdapterFactory = (opts) => new BullMqAdapter(opts);
export default factory;
