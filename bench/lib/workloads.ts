import type { AdapterFactory, AdapterOptions } from "./types.js";
import { checkDelivery, type Delivery, rate, summarize } from "./stats.js";
import { median } from "./pairs.js";
import { cpuMsBetween, type ServerProcesses, snapshot, watchRss } from "./cpu.js";
import { LARGE_PAYLOAD_BYTES } from "./payload.js";
import type { WorkerReport } from "../worker.js";
import { type Worker, withWorkers } from "./workers.js";
import { MANY_TABLES_FULL, MANY_TABLES_QUICK, type ManyTablesSizes } from "./many-tables.js";

export interface Sizes {
  /** Untimed rounds of w1-e2e every system runs before its workloads, and the messages in each. */
  warmupRounds: number;
  warmupMessages: number;
  w1Messages: number;
  w2WarmupSec: number;
  w2MeasureSec: number;
  w2Rate: number;
  backlogMessages: number;
  ceilingMessages: number;
  drainTimeoutMs: number;
  /** large-payload: messages, and the size of each as JSON text. */
  largeMessages: number;
  largePayloadBytes: number;
  /** due-times: messages, and the longest delay they get. */
  dueMessages: number;
  dueMaxDelayMs: number;
  /**
   * Rounds of the paired phase (pairs.ts): every system's w1-e2e and the ceiling, back to back. One round's
   * tablemq ÷ rabbitmq-quorum ranged 1.03–1.70 over three runs one evening (15 rounds, median 1.33), so a median
   * of 5 still moved by ±0.15 from run to run; 9 narrow it, for a few more minutes per run.
   */
  pairRounds: number;
  /** Rounds of the multi-node workload (multi-node.ts): w1-e2e on one node and on two, back to back. */
  multiNodeRounds: number;
  /** Rounds of the txn-insert workload: tablemq/sql's producers and the INSERT-only ceiling, back to back. */
  txnRounds: number;
  /** The many-tables workload (many-tables.ts). */
  manyTables: ManyTablesSizes;
}

export const FULL: Sizes = {
  warmupRounds: 3,
  warmupMessages: 50_000,
  w1Messages: 50_000,
  w2WarmupSec: 1,
  w2MeasureSec: 10,
  w2Rate: 500,
  backlogMessages: 1_000_000,
  ceilingMessages: 200_000,
  drainTimeoutMs: 600_000,
  largeMessages: 2_000,
  largePayloadBytes: LARGE_PAYLOAD_BYTES,
  dueMessages: 10_000,
  dueMaxDelayMs: 60_000,
  pairRounds: 9,
  multiNodeRounds: 9,
  txnRounds: 7,
  manyTables: MANY_TABLES_FULL,
};

export const QUICK: Sizes = {
  warmupRounds: 1,
  warmupMessages: 1_000,
  w1Messages: 2_000,
  w2WarmupSec: 1,
  w2MeasureSec: 2,
  w2Rate: 200,
  backlogMessages: 20_000,
  ceilingMessages: 20_000,
  drainTimeoutMs: 60_000,
  largeMessages: 100,
  largePayloadBytes: LARGE_PAYLOAD_BYTES,
  dueMessages: 500,
  dueMaxDelayMs: 3_000,
  pairRounds: 1,
  multiNodeRounds: 2,
  txnRounds: 1,
  manyTables: MANY_TABLES_QUICK,
};

export interface RunContext {
  system: string;
  factory: AdapterFactory;
  opts: AdapterOptions;
  sizes: Sizes;
  /** The system's server processes (known once the adapter is prepared), for CPU accounting. */
  servers?: () => Record<string, ServerProcesses> | undefined;
  /** Servers of several nodes: which one each producer and consumer talks to (else all use opts.endpoint). */
  placement?: Placement;
}

/**
 * The endpoint of each producer and of each consumer, by its index modulo the list's length: with two nodes,
 * `{ producers: [a, b], consumers: [a, b] }` puts half of each on either node.
 */
export interface Placement {
  producers: readonly string[];
  consumers: readonly string[];
}

/** The options worker `index` of `role` gets: the run's, with its node's endpoint when the run has several. */
function optsOf(ctx: RunContext, role: keyof Placement, index: number): AdapterOptions {
  const endpoints = ctx.placement?.[role];
  return endpoints?.length ? { ...ctx.opts, endpoint: endpoints[index % endpoints.length]! } : ctx.opts;
}

/**
 * Where the box's CPU went during a workload, in µs per message: the load generators (producer and
 * consumer processes, from their own process.cpuUsage) and the server side (e.g. tablemq + MariaDB).
 */
export interface CpuPerMessage {
  producersUs: number;
  consumersUs: number;
  /** Server side, per server process group (e.g. tablemq and mariadb). */
  serverUs?: Record<string, number>;
}

function cpuPerMessage(
  messages: number,
  producers: Array<{ cpuMs: number }>,
  consumers: Array<{ cpuMs: number }>,
  serverMs: Record<string, number> | undefined,
): CpuPerMessage {
  const us = (ms: number) => (ms * 1000) / messages;
  const sum = (ws: Array<{ cpuMs: number }>) => us(ws.reduce((a, w) => a + w.cpuMs, 0));
  const server = serverMs && Object.fromEntries(Object.entries(serverMs).map(([k, ms]) => [k, us(ms)]));
  return { producersUs: sum(producers), consumersUs: sum(consumers), ...(server ? { serverUs: server } : {}) };
}

/** Snapshots the CPU of each server process group; `finish()` gives the ms each used since. */
async function serverCpu(ctx: RunContext): Promise<{ finish(): Promise<Record<string, number> | undefined> }> {
  const groups = Object.entries(ctx.servers?.() ?? {});
  const before = await Promise.all(groups.map(([, which]) => snapshot(which)));
  return {
    async finish() {
      const after = await Promise.all(groups.map(([, which]) => snapshot(which)));
      const out: Record<string, number> = {};
      for (const [i, [name]] of groups.entries()) {
        const ms = cpuMsBetween(before[i], after[i]);
        if (ms === undefined) return undefined;
        out[name] = ms;
      }
      return groups.length ? out : undefined;
    },
  };
}

export const PRODUCERS = 4;
const CONSUMERS = 4;
const W2_CONSUMERS = 2;
/** large-payload: one subscriber drains; producers publish 10 messages (~1 MB) per request or confirm window. */
const LARGE_CONSUMERS = 1;
const LARGE_BATCH = 10;

/** How many consumer processes a workload runs (adapters need it before prepare()). */
export const consumersOf = (workload: string): number =>
  workload === "w2" ? W2_CONSUMERS : workload === "large-payload" ? LARGE_CONSUMERS : CONSUMERS;
const BATCH = 100;

/** Splits `total` over `n` producers. */
function shares(total: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.floor(total / n) + (i < total % n ? 1 : 0));
}

async function produceAll(
  ctx: RunContext,
  producers: Worker[],
  counts: number[],
  batch: number,
  ratePerSec?: number,
  payloadBytes?: number,
) {
  producers.forEach((w, i) =>
    w.send({
      cmd: "produce",
      system: ctx.system,
      opts: optsOf(ctx, "producers", i),
      producer: i,
      count: counts[i]!,
      batch,
      ...(ratePerSec ? { ratePerSec } : {}),
      ...(payloadBytes ? { payloadBytes } : {}),
    }),
  );
  return Promise.all(producers.map((w) => w.next("produced")));
}

function startConsumers(ctx: RunContext, consumers: Worker[], latencies = false): Worker[] {
  consumers.forEach((w, i) => w.send({ cmd: "consume", system: ctx.system, opts: optsOf(ctx, "consumers", i), latencies }));
  return consumers;
}

/** Runs `work` with the system's kept producer and consumer processes (workers.ts). */
function withLoad<T>(ctx: RunContext, producers: number, consumers: number, work: (p: Worker[], c: Worker[]) => Promise<T>): Promise<T> {
  return withWorkers(ctx.system, "producer", producers, (p) => withWorkers(ctx.system, "consumer", consumers, (c) => work(p, c)));
}

/** What the consumers got, and why the drain stopped early if it did (then the rest counts as missing). */
interface Drained {
  results: Array<Extract<WorkerReport, { type: "consumed" }>>;
  stopped?: string;
}

/** Waits until the consumers together report `total` messages (or the timeout, or a stall), then stops them. */
async function drain(consumers: Worker[], total: number, timeoutMs: number): Promise<Drained> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  let stalledSince = Date.now();
  let stopped: string | undefined;
  for (;;) {
    const got = consumers.reduce((n, w) => n + w.received, 0);
    if (got >= total) break;
    if (Date.now() > deadline) {
      stopped = `not drained within the ${timeoutMs / 1000} s limit`;
      break;
    }
    if (process.env.BENCH_VERBOSE) process.stderr.write(`[bench] received ${got}/${total}\n`);
    if (got !== last) {
      last = got;
      stalledSince = Date.now();
    } else if (Date.now() - stalledSince > 60_000) {
      stopped = "nothing received for 60 s"; // stop and report the rest missing
      break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 200)); // let in-flight acks and stragglers land
  for (const w of consumers) w.send({ cmd: "stop" });
  const results = await Promise.all(consumers.map((w) => w.next("consumed")));
  return stopped ? { results, stopped } : { results };
}

/** checkDelivery of a drain, with the reason it stopped early if it did. */
const delivered = (counts: Array<{ producer: number; count: number }>, { results, stopped }: Drained): Delivery => ({
  ...checkDelivery(
    counts,
    results.map((r) => r.keys),
  ),
  ...(stopped ? { stopped } : {}),
});

const published = (counts: number[]) => counts.map((count, producer) => ({ producer, count }));
/** First and last receive times over the consumers that received anything. */
const receiveSpan = (results: Array<{ keys: string[]; firstNs: string; lastNs: string }>) => {
  const active = results.filter((r) => r.keys.length > 0);
  if (active.length === 0) return [0n, 0n] as const;
  return span(
    active.map((r) => BigInt(r.firstNs)),
    active.map((r) => BigInt(r.lastNs)),
  );
};
const span = (starts: bigint[], ends: bigint[]) =>
  [starts.reduce((a, b) => (a < b ? a : b)), ends.reduce((a, b) => (a > b ? a : b))] as const;

export interface W1Result extends Delivery {
  publishPerSec: number;
  drainPerSec: number;
}

/** w1-publish: publish everything (4 producers, batches of 100), then drain with 4 consumers. */
export function w1Publish(ctx: RunContext): Promise<W1Result> {
  return withLoad(ctx, PRODUCERS, CONSUMERS, (producers, consumers) => w1PublishWith(ctx, producers, consumers));
}

async function w1PublishWith(ctx: RunContext, producers: Worker[], consumers: Worker[]): Promise<W1Result> {
  const counts = shares(ctx.sizes.w1Messages, PRODUCERS);
  const done = await produceAll(ctx, producers, counts, BATCH);
  const [p0, p1] = span(
    done.map((d) => BigInt(d.startNs)),
    done.map((d) => BigInt(d.endNs)),
  );
  const drained = await drain(startConsumers(ctx, consumers), ctx.sizes.w1Messages, ctx.sizes.drainTimeoutMs);
  const [c0, c1] = receiveSpan(drained.results);
  const delivery = delivered(published(counts), drained);
  return { publishPerSec: rate(ctx.sizes.w1Messages, p0, p1), drainPerSec: rate(delivery.unique, c0, c1), ...delivery };
}

export interface E2EResult extends Delivery {
  e2ePerSec: number;
  cpu: CpuPerMessage;
}

/** w1-e2e: producers and consumers at once; first publish to last receive. */
export function w1EndToEnd(ctx: RunContext): Promise<E2EResult> {
  return withLoad(ctx, PRODUCERS, CONSUMERS, (producers, consumers) => w1EndToEndWith(ctx, producers, consumers));
}

async function w1EndToEndWith(ctx: RunContext, producers: Worker[], consumers: Worker[]): Promise<E2EResult> {
  const counts = shares(ctx.sizes.w1Messages, PRODUCERS);
  startConsumers(ctx, consumers);
  await new Promise((r) => setTimeout(r, 300)); // consumers subscribed
  const cpu = await serverCpu(ctx);
  const producing = produceAll(ctx, producers, counts, BATCH);
  const drained = await drain(consumers, ctx.sizes.w1Messages, ctx.sizes.drainTimeoutMs);
  const done = await producing;
  const serverMs = await cpu.finish();
  const first = done.map((d) => BigInt(d.startNs)).reduce((a, b) => (a < b ? a : b));
  const [, last] = receiveSpan(drained.results);
  const delivery = delivered(published(counts), drained);
  return {
    e2ePerSec: rate(delivery.unique, first, last),
    cpu: cpuPerMessage(delivery.unique, done, drained.results, serverMs),
    ...delivery,
  };
}

export interface W2Result extends Delivery {
  publishToReceiveMs: ReturnType<typeof summarize>;
  /**
   * From the end of each message's publish (its request answered; for tablemq-txn its COMMIT returned) to
   * its receipt: publish→receive less that message's own request time.
   */
  answerToReceiveMs: ReturnType<typeof summarize>;
  enqueueMs: ReturnType<typeof summarize>;
}

/**
 * w2-latency: one producer at a fixed rate, one message per request, 2 consumers (or `consumers`); warm-up
 * excluded.
 */
export function w2Latency(ctx: RunContext, consumers = W2_CONSUMERS): Promise<W2Result> {
  return withLoad(ctx, 1, consumers, ([producer], subscribed) => w2LatencyWith(ctx, producer!, subscribed));
}

async function w2LatencyWith(ctx: RunContext, producer: Worker, consumers: Worker[]): Promise<W2Result> {
  const { w2Rate, w2WarmupSec, w2MeasureSec } = ctx.sizes;
  const total = w2Rate * (w2WarmupSec + w2MeasureSec);
  const warmup = w2Rate * w2WarmupSec;
  startConsumers(ctx, consumers, true);
  await new Promise((r) => setTimeout(r, 300));
  const producing = produceAll(ctx, [producer], [total], 1, w2Rate);
  const drained = await drain(consumers, total, ctx.sizes.drainTimeoutMs);
  const [done] = await producing;
  const latencies: number[] = [];
  const afterAnswer: number[] = [];
  for (const r of drained.results) {
    r.keys.forEach((k, i) => {
      const seq = Number(k.split("-")[1]);
      if (seq < warmup) return;
      const ms = r.latencyUs[i]! / 1000;
      latencies.push(ms);
      // One message per request: request `seq` carried message `seq`.
      afterAnswer.push(ms - done!.requestMs[seq]!);
    });
  }
  return {
    publishToReceiveMs: summarize(latencies),
    answerToReceiveMs: summarize(afterAnswer),
    enqueueMs: summarize(done!.requestMs.slice(warmup)),
    ...delivered([{ producer: 0, count: total }], drained),
  };
}

export interface BacklogResult extends Delivery {
  publishPerSec: number;
  /** Drain rate of each successive 10 % of the backlog. */
  drainPerSecByDecile: number[];
  firstVsLast: number;
  serverPeakRssMb?: number;
}

/** backlog: everything enqueued before any consumer, then drained; is the drain rate flat? */
export function backlog(ctx: RunContext, peakRss: () => Promise<number | undefined>): Promise<BacklogResult> {
  return withLoad(ctx, PRODUCERS, CONSUMERS, (producers, consumers) => backlogWith(ctx, peakRss, producers, consumers));
}

async function backlogWith(
  ctx: RunContext,
  peakRss: () => Promise<number | undefined>,
  producers: Worker[],
  consumers: Worker[],
): Promise<BacklogResult> {
  const total = ctx.sizes.backlogMessages;
  const counts = shares(total, PRODUCERS);
  const done = await produceAll(ctx, producers, counts, BATCH);
  const [p0, p1] = span(
    done.map((d) => BigInt(d.startNs)),
    done.map((d) => BigInt(d.endNs)),
  );
  const drained = await drain(startConsumers(ctx, consumers), total, ctx.sizes.drainTimeoutMs);
  const { results } = drained;
  // Every milestone stands for 1,000 messages of one consumer: merged in time order they give the
  // global count over time.
  const ticks = results.flatMap((r) => r.milestones.map(([, t]) => BigInt(t))).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const [start] = receiveSpan(results);
  const decile = Math.floor(ticks.length / 10);
  const byDecile: number[] = [];
  let prev = start;
  for (let d = 1; d <= 10 && decile > 0; d++) {
    const t = ticks[d * decile - 1]!;
    byDecile.push(rate(decile * 1000, prev, t));
    prev = t;
  }
  const rss = await peakRss();
  return {
    publishPerSec: rate(total, p0, p1),
    drainPerSecByDecile: byDecile,
    firstVsLast: byDecile.length ? byDecile.at(-1)! / byDecile[0]! : NaN,
    ...(rss ? { serverPeakRssMb: rss / 2 ** 20 } : {}),
    ...delivered(published(counts), drained),
  };
}

/** Bytes in a MB in the reports (RSS and MB/s alike). */
const MB = 2 ** 20;

export interface LargePayloadResult extends Delivery {
  messages: number;
  /** Each message's size as JSON text. */
  payloadBytes: number;
  publishPerSec: number;
  publishMBps: number;
  /** The drain: from the subscriber's start (before it connects) to its last message. */
  drainSec: number;
  drainPerSec: number;
  /** Payload bytes received ÷ drainSec. */
  drainMBps: number;
  /** From the subscriber's start to its first message. */
  firstMessageMs: number;
  /** Resident memory of each server process group over the whole workload (enqueue and drain), MB. */
  serverRssMb?: Record<string, { startMb: number; peakMb: number; how: string; processes: number }>;
  /** CPU over the whole workload (enqueue and drain), µs per message. */
  cpu: CpuPerMessage;
}

/**
 * large-payload: `largeMessages` payloads of `largePayloadBytes` (100 KiB JSON documents, makeLargePayload)
 * published by 4 producers in batches of 10 while no subscriber is connected, then drained by one subscriber
 * (at most `prefetch` unacked). Reports the drain's MB/s and msg/s and the peak resident memory of the
 * server's processes over the whole workload.
 */
export function largePayload(ctx: RunContext): Promise<LargePayloadResult> {
  return withLoad(ctx, PRODUCERS, LARGE_CONSUMERS, (producers, consumers) => largePayloadWith(ctx, producers, consumers));
}

async function largePayloadWith(ctx: RunContext, producers: Worker[], consumers: Worker[]): Promise<LargePayloadResult> {
  const total = ctx.sizes.largeMessages;
  const bytes = ctx.sizes.largePayloadBytes;
  const counts = shares(total, PRODUCERS);
  const rss = await watchRss(ctx.servers?.() ?? {});
  const cpu = await serverCpu(ctx);
  let drained: Drained;
  let done: Awaited<ReturnType<typeof produceAll>>;
  let serverMs: Record<string, number> | undefined;
  let rssSpans: Awaited<ReturnType<typeof rss.stop>>;
  try {
    done = await produceAll(ctx, producers, counts, LARGE_BATCH, undefined, bytes);
    drained = await drain(startConsumers(ctx, consumers), total, ctx.sizes.drainTimeoutMs);
  } finally {
    serverMs = await cpu.finish();
    rssSpans = await rss.stop();
  }
  const [p0, p1] = span(
    done.map((d) => BigInt(d.startNs)),
    done.map((d) => BigInt(d.endNs)),
  );
  const delivery = delivered(published(counts), drained);
  const c0 = drained.results.map((r) => BigInt(r.startNs)).reduce((a, b) => (a < b ? a : b));
  const [first, last] = receiveSpan(drained.results);
  const drainSec = delivery.unique > 0 ? Number(last - c0) / 1e9 : NaN;
  const publishPerSec = rate(total, p0, p1);
  const drainPerSec = delivery.unique / drainSec;
  const serverRssMb = Object.fromEntries(
    Object.entries(rssSpans).map(([name, r]) => [name, { startMb: r.start / MB, peakMb: r.peak / MB, how: r.how, processes: r.processes }]),
  );
  return {
    messages: total,
    payloadBytes: bytes,
    publishPerSec,
    publishMBps: (publishPerSec * bytes) / MB,
    drainSec,
    drainPerSec,
    drainMBps: (drainPerSec * bytes) / MB,
    firstMessageMs: delivery.unique > 0 ? Number(first - c0) / 1e6 : NaN,
    ...(Object.keys(serverRssMb).length ? { serverRssMb } : {}),
    cpu: cpuPerMessage(Math.max(1, delivery.unique), done, drained.results, serverMs),
    ...delivery,
  };
}

/** AdapterOptions.variant for tablemq-txn's producers that commit without sending a wake. */
export const NO_WAKE = "no-wake";

export interface TxnInsertResult {
  /**
   * Per round: the producers' msg/s (w1's publish: enqueue in their own transactions and commit), the INSERT-only
   * ceiling's in the same transactions, and the ceiling's INSERT half as the ceiling runs it (autocommitted).
   */
  rounds: Array<{ txnPerSec: number; insertCeilingPerSec: number; autocommitPerSec: number }>;
  /** Median over the rounds of txnPerSec ÷ insertCeilingPerSec. */
  medianRatio: number;
  /** Median over the rounds of txnPerSec ÷ autocommitPerSec. */
  medianRatioAutocommit: number;
}

/**
 * txn-insert (issue 26): tablemq/sql's INSERT path against the database's. Each round, w1's producers publish
 * w1Messages into a fresh table (4 connections, 100 messages per transaction, nobody subscribed, no wake),
 * then the ceiling's INSERT half writes as many rows in the same transactions without the helper (ceiling.ts),
 * back to back so the machine's drift cancels out in the ratio.
 */
export function txnInsert(
  ctx: RunContext,
  freshTable: () => Promise<void>,
  insertCeiling: (total: number) => Promise<number>,
  autocommitCeiling: (total: number) => Promise<number>,
): Promise<TxnInsertResult> {
  // The INSERT path alone: these producers send no wake (nobody is subscribed; w1-e2e measures the wake's cost).
  const quiet: RunContext = { ...ctx, opts: { ...ctx.opts, variant: NO_WAKE } };
  return withLoad(ctx, PRODUCERS, 0, async (producers) => {
    const rounds: TxnInsertResult["rounds"] = [];
    for (let round = 0; round < ctx.sizes.txnRounds; round++) {
      await freshTable();
      const done = await produceAll(quiet, producers, shares(ctx.sizes.w1Messages, PRODUCERS), BATCH);
      const [p0, p1] = span(
        done.map((d) => BigInt(d.startNs)),
        done.map((d) => BigInt(d.endNs)),
      );
      const txnPerSec = rate(ctx.sizes.w1Messages, p0, p1);
      const insertCeilingPerSec = await insertCeiling(ctx.sizes.w1Messages);
      rounds.push({ txnPerSec, insertCeilingPerSec, autocommitPerSec: await autocommitCeiling(ctx.sizes.w1Messages) });
    }
    return {
      rounds,
      medianRatio: median(rounds.map((r) => r.txnPerSec / r.insertCeilingPerSec)),
      medianRatioAutocommit: median(rounds.map((r) => r.txnPerSec / r.autocommitPerSec)),
    };
  });
}
