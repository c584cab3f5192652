/**
 * NATS JetStream through @nats-io/jetstream (the official Node client) as its docs show: a stream with file
 * storage and work-queue retention holding one subject per queue; producers fire one js.publish() per message
 * of a batch and wait for all the PubAcks; consumers share one durable pull consumer with explicit acks and
 * read it with consume(), acking each message.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { AckPolicy, DiscardPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type NatsConnection, connect } from "@nats-io/transport-node";
import type { ServerProcesses } from "../lib/cpu.js";
import { payloadText } from "../lib/payload.js";
import type { Adapter, AdapterFactory, AdapterOptions, Consumer, Producer } from "../lib/types.js";
import { probe } from "../lib/probe.js";
import { Unavailable } from "../lib/types.js";

export const NATS_URL = process.env.NATS_BENCH_URL ?? "nats://127.0.0.1:4222";

const ACK_WAIT_NS = 30_000_000_000; // 30 s, as tablemq's bench table

class NatsAdapter implements Adapter {
  readonly name = "nats-jetstream";
  /** Refined by version()/prepare() once the server's version is known. */
  durability = "JetStream file storage, work-queue retention; PubAck once written, fsync on nats-server's sync interval (not per message)";
  private readonly stream: string;
  private readonly subject: string;
  private readonly durable = "bench";

  constructor(private readonly opts: AdapterOptions) {
    // Stream names may not contain . * > or whitespace; subjects are dot-separated tokens.
    this.stream = opts.queue.replace(/[^A-Za-z0-9_-]/g, "_");
    this.subject = `bench.${this.stream}`;
  }

  async version(): Promise<string> {
    const nc = await this.connect();
    try {
      const server = nc.info?.version ?? "?";
      this.describe(server);
      return `@nats-io/jetstream ${packageVersion("@nats-io/jetstream")}, nats-server ${server}`;
    } finally {
      await nc.close();
    }
  }

  async prepare(): Promise<void> {
    const nc = await this.connect();
    try {
      this.describe(nc.info?.version);
      let jsm;
      try {
        jsm = await jetstreamManager(nc);
      } catch (err) {
        throw new Unavailable(`nats-jetstream: JetStream is not enabled on ${NATS_URL} (${(err as Error).message})`);
      }
      await jsm.streams.delete(this.stream).catch(() => false); // absent: nothing to delete
      await jsm.streams.add({
        name: this.stream,
        subjects: [this.subject],
        storage: StorageType.File,
        retention: RetentionPolicy.Workqueue,
        discard: DiscardPolicy.Old,
        num_replicas: 1,
      });
      await jsm.consumers.add(this.stream, {
        durable_name: this.durable,
        ack_policy: AckPolicy.Explicit,
        ack_wait: ACK_WAIT_NS,
        // One durable consumer is shared by every consumer process: cap unacked at prefetch per process.
        max_ack_pending: this.opts.prefetch * (this.opts.consumers ?? 1),
      });
    } finally {
      await nc.close();
    }
  }

  /** NATS: its CPU time is read around each workload. */
  serverProcesses(): Record<string, ServerProcesses> {
    return { nats: { comms: ["nats-server"] } };
  }

  async cleanup(): Promise<void> {
    let nc: NatsConnection;
    try {
      nc = await this.connect();
    } catch {
      return;
    }
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.delete(this.stream).catch(() => false);
    } finally {
      await nc.close();
    }
  }

  async producer(): Promise<Producer> {
    const nc = await this.connect();
    const js = jetstream(nc);
    const subject = this.subject;
    return {
      async publish(payloads) {
        // Each publish resolves on the server's PubAck (the message is stored in the stream).
        await Promise.all(payloads.map((p) => js.publish(subject, payloadText(p))));
      },
      async close() {
        await nc.drain();
      },
    };
  }

  async consumer(onMessage: (payload: string) => void): Promise<Consumer> {
    const nc = await this.connect();
    const js = jetstream(nc);
    const consumer = await js.consumers.get(this.stream, this.durable);
    // The client keeps at most `prefetch` messages pulled; the server caps unacked at max_ack_pending.
    const messages = await consumer.consume({ max_messages: this.opts.prefetch });
    const loop = (async () => {
      for await (const m of messages) {
        onMessage(m.string());
        m.ack();
      }
    })();
    return {
      async close() {
        await messages.close();
        await loop.catch(() => {});
        await nc.drain(); // flushes the last acks
      },
    };
  }

  /** nats-server 2.9 fsyncs the file store every 60 s; 2.10+ every 2 min unless `sync_interval` says otherwise. */
  private describe(server: string | undefined): void {
    const [major, minor] = (server ?? "").split(".").map(Number);
    const sync =
      major === 2 && minor !== undefined && minor < 10
        ? `fsync every 60 s (nats-server ${server} default; no per-message sync option in 2.9)`
        : `fsync every 2 min by default (nats-server ${server ?? "?"}; per message only with sync_interval: always)`;
    this.durability = `JetStream file storage, work-queue retention, R1; PubAck once written to the file store, ${sync}`;
  }

  private async connect(): Promise<NatsConnection> {
    const url = new URL(NATS_URL);
    await probe("nats-jetstream", url.hostname, Number(url.port || 4222));
    try {
      return await connect({ servers: `${url.hostname}:${url.port || 4222}` });
    } catch (err) {
      throw new Unavailable(`nats-jetstream: cannot connect to ${url.host} (${(err as Error).message})`);
    }
  }
}

/** A package's version from its package.json (found from its entry point: some packages do not export it). */
function packageVersion(name: string): string {
  let dir = dirname(createRequire(import.meta.url).resolve(name));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string; version: string };
      if (pkg.name === name) return pkg.version;
    } catch {
      // no package.json here
    }
    const parent = dirname(dir);
    if (parent === dir) return "?";
    dir = parent;
  }
}

const factory: AdapterFactory = (opts) => new NatsAdapter(opts);
export default factory;
