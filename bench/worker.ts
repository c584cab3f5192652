/**
 * A benchmark worker process: a producer or a consumer of one system, one command at a time, kept for the
 * next workload of that system. Driven by the runner over IPC (see bench/lib/workers.ts); never run by
 * hand. It leaves when the runner closes the IPC channel.
 */
import { type BenchPayload, makeLargePayload, makePayload, readPayload } from "./lib/payload.js";
import { SYSTEMS } from "./lib/systems.js";
import type { AdapterOptions } from "./lib/types.js";

export type WorkerCommand =
  /** payloadBytes: large payloads of that size (makeLargePayload) instead of the ~200-byte one. */
  | {
      cmd: "produce";
      system: string;
      opts: AdapterOptions;
      producer: number;
      count: number;
      batch: number;
      ratePerSec?: number;
      payloadBytes?: number;
    }
  | { cmd: "consume"; system: string; opts: AdapterOptions; latencies: boolean }
  | { cmd: "stop" };

export type WorkerReport =
  | { type: "ready" }
  | { type: "produced"; count: number; startNs: string; endNs: string; requestMs: number[]; cpuMs: number }
  | { type: "progress"; received: number }
  /** startNs: when the consume command began (before connecting); firstNs, lastNs: the first and last receive. */
  | {
      type: "consumed";
      keys: string[];
      latencyUs: number[];
      startNs: string;
      firstNs: string;
      lastNs: string;
      milestones: Array<[number, string]>;
      cpuMs: number;
    }
  | { type: "error"; message: string };

const send = (r: WorkerReport) => process.send!(r);
/** CPU this process used (user + system) since `from`, in ms. */
const cpuMsSince = (from: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1000;
};
/** Ends the consume command in progress. */
let stopConsuming: (() => void) | undefined;

process.on("message", (cmd: WorkerCommand) => {
  if (cmd.cmd === "produce") void run(() => produce(cmd));
  else if (cmd.cmd === "consume") void run(() => consume(cmd));
  else if (cmd.cmd === "stop") stopConsuming?.();
});
// The runner closed the channel (it ended this worker, or it exited): nothing more will come.
process.on("disconnect", () => process.exit());
send({ type: "ready" });

async function run(work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (err) {
    send({ type: "error", message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    process.exitCode = 1;
  }
}

async function produce(cmd: Extract<WorkerCommand, { cmd: "produce" }>): Promise<void> {
  const adapter = (await SYSTEMS[cmd.system]!())(cmd.opts);
  const producer = await adapter.producer();
  const cpu = process.cpuUsage(); // from here: loading the client and connecting are not the workload's
  const requestMs: number[] = [];
  const start = process.hrtime.bigint();
  const bytes = cmd.payloadBytes;
  const make = bytes ? (p: number, s: number): BenchPayload => makeLargePayload(p, s, bytes) : makePayload;
  let seq = 0;
  while (seq < cmd.count) {
    const n = Math.min(cmd.batch, cmd.count - seq);
    if (cmd.ratePerSec) {
      // Open-loop pacing: message `seq` is due at start + seq / rate.
      const dueNs = start + BigInt(Math.round((seq / cmd.ratePerSec) * 1e9));
      const waitMs = Number(dueNs - process.hrtime.bigint()) / 1e6;
      if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
    }
    const payloads = Array.from({ length: n }, (_, i) => make(cmd.producer, seq + i));
    const t0 = process.hrtime.bigint();
    await producer.publish(payloads);
    requestMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    seq += n;
  }
  const end = process.hrtime.bigint();
  await producer.close();
  send({ type: "produced", count: seq, startNs: start.toString(), endNs: end.toString(), requestMs, cpuMs: cpuMsSince(cpu) });
}

async function consume(cmd: Extract<WorkerCommand, { cmd: "consume" }>): Promise<void> {
  const start = process.hrtime.bigint();
  const adapter = (await SYSTEMS[cmd.system]!())(cmd.opts);
  const keys: string[] = [];
  const latencyUs: number[] = [];
  const milestones: Array<[number, string]> = [];
  let first = 0n;
  let last = 0n;
  const consumer = await adapter.consumer((payload) => {
    const now = process.hrtime.bigint();
    const { k, t } = readPayload(payload);
    if (keys.length === 0) first = now;
    last = now;
    keys.push(k);
    if (cmd.latencies) latencyUs.push(Number(now - t) / 1000);
    if (keys.length % 1_000 === 0) milestones.push([keys.length, now.toString()]);
  });
  const cpu = process.cpuUsage();
  const progress = setInterval(() => send({ type: "progress", received: keys.length }), 100);
  await new Promise<void>((resolve) => (stopConsuming = resolve));
  stopConsuming = undefined;
  clearInterval(progress);
  await consumer.close();
  send({
    type: "consumed",
    keys,
    latencyUs,
    startNs: start.toString(),
    firstNs: first.toString(),
    lastNs: last.toString(),
    milestones,
    cpuMs: cpuMsSince(cpu),
  });
}
