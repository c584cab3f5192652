/**
 * due-times (tablemq only): how late messages are delivered after they fall due, with the default poll
 * interval (30 s), so a delivery on time is the due-time scheduler's doing, not a poll's.
 *
 * `dueMessages` messages, each with a `deliverAt` drawn uniformly (seeded) from now to now + `dueMaxDelayMs`,
 * enqueued in requests of 100 before a subscriber connects; the subscriber (at most 1,000 unacked) acks every
 * message except one in ten, which it leaves unacked once: that one is redelivered after the ack wait (5 s)
 * plus the backoff (1 s: minBackoffMs = maxBackoffMs, so no jitter), and acked then. Lateness: arrival −
 * deliverAt for first deliveries; for redeliveries, arrival − (first arrival + ack wait + backoff), which
 * counts the few ms between the first arrival and the server's record of it as lateness (an upper bound).
 * Statements: the table's polls per second (the server's own counter, /metrics) beside the fixed-interval
 * poll's 1/30 s, and MariaDB's SELECTs per second over the workload (polls, due-time reads, the rest).
 */
import { createConnection } from "mysql2/promise";
import { TablemqClient } from "../../src/client/index.js";
import { summarize } from "./stats.js";
import type { RunContext } from "./workloads.js";
import { prng } from "./prng.js";

/** The table's options in this workload: the default poll interval, a short ack wait, a fixed backoff. */
export const DUE_TIMES_OPTIONS = { pollIntervalMs: 30_000, ackWaitMs: 5_000, minBackoffMs: 1_000, maxBackoffMs: 1_000, batchSize: 100 };
const REQUEST = 100;
/** One message in this many is left unacked once. */
const REDELIVER_EVERY = 10;

export interface DueTimesResult {
  messages: number;
  redelivered: number;
  maxDelayMs: number;
  /** First deliveries: arrival − deliverAt, ms. */
  lateMs: { p50: number; p99: number; max: number; n: number };
  /** Redeliveries: arrival − (first arrival + ack wait + backoff), ms. */
  redeliveryLateMs: { p50: number; p99: number; max: number; n: number };
  durationSec: number;
  pollsPerSec: number;
  /** What the fixed-interval poll alone would run: 1 / pollIntervalMs. */
  fixedPollsPerSec: number;
  /** MariaDB's Com_select per second over the workload (the whole server). */
  selectsPerSec: number;
  missing: number;
  duplicates: number;
}

export async function dueTimes(ctx: RunContext, dbUrl: string): Promise<DueTimesResult> {
  const url = ctx.opts.endpoint;
  if (!url) throw new Error("due-times needs tablemq's endpoint");
  const { dueMessages: total, dueMaxDelayMs: maxDelayMs } = ctx.sizes;
  const table = ctx.opts.queue;
  const client = new TablemqClient({ url });
  await client.createTable(table, DUE_TIMES_OPTIONS);
  const db = await createConnection(dbUrl);
  const random = prng(20261207);
  try {
    const pollsBefore = await polls(url, table);
    const selectsBefore = await selects(db);
    const t0 = Date.now();
    const due = new Map<string, number>();
    for (let sent = 0; sent < total; sent += REQUEST) {
      const batch = Array.from({ length: Math.min(REQUEST, total - sent) }, () => ({
        deliverAt: Date.now() + Math.floor(random() * maxDelayMs),
        payload: 0,
      }));
      const { ids } = await client.publish(table, batch);
      ids.forEach((id, i) => due.set(id, batch[i]!.deliverAt));
    }
    const redeliverWait = DUE_TIMES_OPTIONS.ackWaitMs + DUE_TIMES_OPTIONS.minBackoffMs;
    const first = new Map<string, number>();
    const late: number[] = [];
    const lateAgain: number[] = [];
    const again = new Set<string>();
    let duplicates = 0;
    let done = 0;
    const subscription = client.subscribe(table, { maxInFlight: 1_000 });
    const deadline = t0 + maxDelayMs + 4 * redeliverWait + 30_000;
    const timer = setTimeout(() => void subscription.close(), Math.max(0, deadline - Date.now()));
    let n = 0;
    for await (const msg of subscription) {
      const at = Date.now();
      const seen = first.get(msg.id);
      if (seen === undefined) {
        first.set(msg.id, at);
        late.push(at - due.get(msg.id)!);
        if (n++ % REDELIVER_EVERY === 0) continue; // left unacked: redelivered after the ack wait
      } else if (msg.epoch === 1 && !again.has(msg.id)) {
        again.add(msg.id);
        lateAgain.push(at - (seen + redeliverWait));
      } else {
        duplicates++;
      }
      msg.ack();
      if (++done >= total) break;
    }
    clearTimeout(timer);
    await subscription.close();
    const durationSec = (Date.now() - t0) / 1000;
    return {
      messages: total,
      redelivered: again.size,
      maxDelayMs,
      lateMs: pick(summarize(late)),
      redeliveryLateMs: pick(summarize(lateAgain)),
      durationSec,
      pollsPerSec: ((await polls(url, table)) - pollsBefore) / durationSec,
      fixedPollsPerSec: 1000 / DUE_TIMES_OPTIONS.pollIntervalMs,
      selectsPerSec: ((await selects(db)) - selectsBefore) / durationSec,
      missing: total - first.size,
      duplicates,
    };
  } finally {
    await db.end();
  }
}

const pick = ({ p50, p99, max, n }: { p50: number; p99: number; max: number; n: number }) => ({ p50, p99, max, n });

async function polls(url: string, table: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`tablemq_polls_total{table="${table}"}`));
  return line ? Number(line.split(" ").at(-1)) : 0;
}

async function selects(db: Awaited<ReturnType<typeof createConnection>>): Promise<number> {
  const [rows] = await db.query("SHOW GLOBAL STATUS LIKE 'Com_select'");
  return Number((rows as Array<{ Value: string }>)[0]?.Value ?? 0);
}
