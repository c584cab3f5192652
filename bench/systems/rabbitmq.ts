/**
 * RabbitMQ through amqplib (the official Node client), as its docs show: a durable queue, persistent
 * messages, publisher confirms on a ConfirmChannel (a batch is published, then waitForConfirms() resolves
 * once the broker has confirmed every message of it), a consumer with a per-consumer prefetch and manual
 * acks. Two variants: a classic durable queue and a quorum queue (Raft log, here a one-node cluster).
 */
import { once } from "node:events";
import { createRequire } from "node:module";
import { type ChannelModel, type ConsumeMessage, connect } from "amqplib";
import type { ServerProcesses } from "../lib/cpu.js";
import { payloadText } from "../lib/payload.js";
import type { Adapter, AdapterFactory, AdapterOptions, Consumer, Producer } from "../lib/types.js";
import { probe } from "../lib/probe.js";
import { Unavailable } from "../lib/types.js";

export const RABBITMQ_URL = process.env.RABBITMQ_BENCH_URL ?? "amqp://guest:guest@127.0.0.1:5672";

type Variant = "classic" | "quorum";

const DURABILITY: Record<Variant, string> = {
  classic:
    "classic durable queue, persistent messages (deliveryMode 2), publisher confirms: confirmed once written to disk (fsync per RabbitMQ's defaults)",
  quorum:
    "quorum queue (one-node Raft), persistent messages, publisher confirms: confirmed once the Raft log is fsynced (RabbitMQ's defaults)",
};

class RabbitMqAdapter implements Adapter {
  readonly name: string;
  readonly durability: string;

  constructor(
    private readonly opts: AdapterOptions,
    private readonly variant: Variant,
  ) {
    this.name = `rabbitmq-${variant}`;
    this.durability = DURABILITY[variant];
  }

  async version(): Promise<string> {
    const conn = await this.connect();
    try {
      const server = conn.connection.serverProperties;
      return `amqplib ${clientVersion()}, ${server.product ?? "RabbitMQ"} ${server.version ?? "?"}`;
    } finally {
      await conn.close().catch(() => {});
    }
  }

  async prepare(): Promise<void> {
    const conn = await this.connect();
    try {
      const ch = await conn.createChannel();
      // Delete and recreate rather than purge: a leftover queue of the other type would make assertQueue fail.
      await ch.deleteQueue(this.opts.queue);
      await ch.assertQueue(this.opts.queue, {
        durable: true,
        exclusive: false,
        autoDelete: false,
        arguments: { "x-queue-type": this.variant },
      });
      await ch.purgeQueue(this.opts.queue);
      await ch.close();
    } finally {
      await conn.close().catch(() => {});
    }
  }

  /** RabbitMQ (the Erlang VM): its CPU time is read around each workload. */
  serverProcesses(): Record<string, ServerProcesses> {
    return { rabbitmq: { comms: ["beam.smp"] } };
  }

  async cleanup(): Promise<void> {
    let conn: ChannelModel;
    try {
      conn = await this.connect();
    } catch {
      return;
    }
    try {
      const ch = await conn.createChannel();
      await ch.deleteQueue(this.opts.queue);
      await ch.close();
    } finally {
      await conn.close().catch(() => {});
    }
  }

  async producer(): Promise<Producer> {
    const conn = await this.connect();
    let failure: Error | undefined;
    conn.on("error", (err: Error) => (failure ??= err));
    const ch = await conn.createConfirmChannel();
    ch.on("error", (err: Error) => (failure ??= err));
    // Fail loudly now if prepare() did not make the queue (the default exchange would drop the messages).
    await ch.checkQueue(this.opts.queue);
    const queue = this.opts.queue;
    return {
      async publish(payloads) {
        if (failure) throw failure;
        for (const p of payloads) {
          // persistent: true is deliveryMode 2.
          if (!ch.sendToQueue(queue, Buffer.from(payloadText(p)), { persistent: true })) await once(ch, "drain");
        }
        // Resolves once the broker confirmed (basic.ack) every message published so far; rejects on a nack.
        await ch.waitForConfirms();
        if (failure) throw failure;
      },
      async close() {
        await ch.close().catch(() => {});
        await conn.close().catch(() => {});
      },
    };
  }

  async consumer(onMessage: (payload: string) => void): Promise<Consumer> {
    const conn = await this.connect();
    conn.on("error", () => {});
    const ch = await conn.createChannel();
    ch.on("error", () => {});
    const prefetch = this.opts.prefetch;
    await ch.prefetch(prefetch); // per consumer (global = false)

    // Acks are batched with `allUpTo` (multiple = true): one ack frame per quarter of the prefetch window, and a
    // short timer flushes whatever is left so the last messages are not left unacked.
    const ackEvery = Math.max(1, Math.floor(prefetch / 4));
    let last: ConsumeMessage | undefined;
    let pending = 0;
    let timer: NodeJS.Timeout | undefined;
    let closed = false;
    const flush = () => {
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (last && !closed) ch.ack(last, true);
      last = undefined;
      pending = 0;
    };

    const { consumerTag } = await ch.consume(
      this.opts.queue,
      (msg) => {
        if (!msg) return; // the broker cancelled the consumer (queue deleted)
        onMessage(msg.content.toString());
        last = msg;
        if (++pending >= ackEvery) flush();
        else timer ??= setTimeout(flush, 5);
      },
      { noAck: false },
    );

    return {
      async close() {
        await ch.cancel(consumerTag).catch(() => {});
        flush();
        closed = true;
        await ch.close().catch(() => {});
        await conn.close().catch(() => {});
      },
    };
  }

  private async connect(): Promise<ChannelModel> {
    const url = new URL(RABBITMQ_URL);
    await probe(`rabbitmq-${this.variant}`, url.hostname, Number(url.port || 5672));
    try {
      return await connect(RABBITMQ_URL);
    } catch (err) {
      throw new Unavailable(`rabbitmq-${this.variant}: cannot connect to ${url.host} (${(err as Error).message})`);
    }
  }
}

function clientVersion(): string {
  return (createRequire(import.meta.url)("amqplib/package.json") as { version: string }).version;
}

export const classic: AdapterFactory = (opts) => new RabbitMqAdapter(opts, "classic");
export const quorum: AdapterFactory = (opts) => new RabbitMqAdapter(opts, "quorum");
