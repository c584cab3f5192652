/**
 * Rounds of w1-e2e, then (if asked) rounds of w2, against one `tablemq serve`: to see the server reach its
 * steady state and to compare server code at the same warmth.
 * `npx tsx bench/tools/steady.ts [rounds=6] [messages=50000] [w2 rounds=0]`. Each w1-e2e round prints its
 * rate and the CPU µs per message of the producers, the consumers, the server and MariaDB, the messages per
 * request, frame, statement and commit, and the server's page faults and RSS; each w2 round its percentiles
 * and the server's CPU per message, with the probe (if loaded) signalled around it. TABLEMQ_STEADY_IDLE_S
 * idles everything that long before each round after the 4th (a Node process idle for a while comes back
 * slow: V8's memory reducer; the server runs without it, see README "Running it", unless
 * TABLEMQ_BENCH_NODE_ARGS="--memory-reducer" gives it back).
 * TABLEMQ_BENCH_NODE_ARGS passes flags to the server, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" or
 * "--import ./bench/tools/server-probe.mjs" (statement times, event-loop delay and GC; see that file).
 * Not part of `npm run bench`: a tool for the next optimisation, not a result.
 */
import { createConnection } from "mysql2/promise";
import { cpuMsBetween, procStat, snapshot } from "../lib/cpu.js";
import { SYSTEMS } from "../lib/systems.js";
import { BENCH_DB_URL } from "../systems/tablemq.js";
import type { Adapter } from "../lib/types.js";
import { endWorkers } from "../lib/workers.js";
import { FULL, w1EndToEnd, w2Latency } from "../lib/workloads.js";

const COUNTERS = ["Com_insert", "Com_update", "Handler_commit"];
const rounds = Number(process.argv[2] ?? 6);
const messages = Number(process.argv[3] ?? 50_000);
const latencyRounds = Number(process.argv[4] ?? 0);
const idleSeconds = Number(process.env.TABLEMQ_STEADY_IDLE_S ?? 0);
const factory = await SYSTEMS["tablemq"]!();
let adapter: Adapter | undefined;
try {
  for (let round = 1; round <= rounds; round++) {
    const opts = { queue: `steady_${round}_${Date.now().toString(36)}`, prefetch: 100, consumers: 4 };
    const current = factory(opts);
    adapter = current;
    await current.prepare();
    // TABLEMQ_STEADY_IDLE_S: everything idles this long before each round after the 4th (the idle-cold effect).
    if (round > 4 && idleSeconds > 0) await new Promise((r) => setTimeout(r, idleSeconds * 1000));
    const serverPid = current.serverProcesses?.()["tablemq"]?.pids?.[0];
    const proc0 = await serverStat(serverPid);
    const status0 = await dbStatus();
    const r = await w1EndToEnd({
      system: "tablemq",
      factory,
      opts,
      sizes: { ...FULL, w1Messages: messages },
      servers: () => current.serverProcesses?.(),
    });
    const server = Object.entries(r.cpu.serverUs ?? {})
      .map(([k, v]) => `${k} ${v.toFixed(1)}`)
      .join(", ");
    const lost = r.missing > 0 ? `, ${r.missing} missing` : "";
    const details = `${await batchSizes(opts)}; ${statements(status0, await dbStatus(), messages)}; ${faults(proc0, await serverStat(serverPid), messages)}`;
    console.log(
      `round ${round}: ${Math.round(r.e2ePerSec)} msg/s; µs/msg: producers ${r.cpu.producersUs.toFixed(1)}, consumers ${r.cpu.consumersUs.toFixed(1)}, ${server}${lost}; ${details}`,
    );
    await current.cleanup();
  }
  for (let round = 1; round <= latencyRounds; round++) {
    const opts = { queue: `steady_w2_${round}_${Date.now().toString(36)}`, prefetch: 100, consumers: 2 };
    const current = factory(opts);
    adapter = current;
    await current.prepare();
    const server = { pids: Object.values(current.serverProcesses?.() ?? {}).flatMap((p) => p.pids ?? []) };
    // SIGUSR2 would end a server without the probe; with it, the probe starts a new summary.
    const signalled = (process.env.TABLEMQ_BENCH_NODE_ARGS ?? "").includes("server-probe") ? server.pids : [];
    for (const pid of signalled) process.kill(pid, "SIGUSR2");
    const before = await snapshot(server);
    const r = await w2Latency({ system: "tablemq", factory, opts, sizes: FULL });
    const cpuUs = ((cpuMsBetween(before, await snapshot(server)) ?? NaN) * 1000) / (FULL.w2Rate * (FULL.w2WarmupSec + FULL.w2MeasureSec));
    for (const pid of signalled) process.kill(pid, "SIGUSR2");
    const p = r.publishToReceiveMs;
    console.log(
      `w2 round ${round}: publish→receive p50 ${p.p50.toFixed(2)} p90 ${p.p90.toFixed(2)} p99 ${p.p99.toFixed(2)} max ${p.max.toFixed(2)} ms; enqueue p99 ${r.enqueueMs.p99.toFixed(2)} ms; server ${cpuUs.toFixed(0)} µs CPU/msg`,
    );
    await current.cleanup();
  }
} finally {
  await adapter?.shutdown?.();
  endWorkers();
}

/** Mean messages per enqueue request, ack request or frame, and delivery frame for the round's table (from /metrics). */
async function batchSizes(opts: { queue: string; endpoint?: string }): Promise<string> {
  if (!opts.endpoint) return "";
  const text = await (await fetch(`${opts.endpoint}/metrics`)).text();
  const value = (kind: string, part: "sum" | "count") => {
    const m = new RegExp(`^tablemq_batch_size_${part}\\{[^}]*table="${opts.queue}"[^}]*kind="${kind}"[^}]*\\} (\\S+)$`, "m").exec(text);
    return m ? Number(m[1]) : NaN;
  };
  return ["enqueue", "ack", "delivery"].map((k) => `${k} ${(value(k, "sum") / value(k, "count")).toFixed(1)} msg`).join(", ");
}

/** MariaDB's statement and commit counters (SHOW GLOBAL STATUS). */
async function dbStatus(): Promise<Map<string, number>> {
  const conn = await createConnection(BENCH_DB_URL);
  try {
    const [rows] = await conn.query("SHOW GLOBAL STATUS WHERE Variable_name IN (?)", [COUNTERS]);
    return new Map((rows as Array<{ Variable_name: string; Value: string }>).map((r) => [r.Variable_name, Number(r.Value)]));
  } finally {
    await conn.end();
  }
}

/** Messages per INSERT, per UPDATE and per commit over a round (the counters are server-wide). */
function statements(before: Map<string, number>, after: Map<string, number>, messages: number): string {
  return COUNTERS.map((k) => `${(messages / ((after.get(k) ?? NaN) - (before.get(k) ?? NaN))).toFixed(0)} msg/${k}`).join(", ");
}

/** The server's minor page faults, user and system CPU ticks, and RSS pages (/proc/<pid>/stat). */
async function serverStat(pid: number | undefined): Promise<number[] | undefined> {
  const f = pid === undefined ? undefined : (await procStat(pid))?.fields;
  return f && [7, 11, 12, 21].map((i) => Number(f[i]));
}

function faults(before: number[] | undefined, after: number[] | undefined, messages: number): string {
  if (!before || !after) return "";
  const [flt, ut, st] = [0, 1, 2].map((i) => after[i]! - before[i]!);
  return `server: ${((flt! * 1000) / messages).toFixed(1)} page faults/1k msg, system ${((100 * st!) / (ut! + st!)).toFixed(0)} % of its CPU, RSS ${((before[3]! * 4096) / 2 ** 20).toFixed(0)}→${((after[3]! * 4096) / 2 ** 20).toFixed(0)} MB`;
}
