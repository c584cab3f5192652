/**
 * Rounds of w1-e2e, then (if asked) rounds of w2, against one `tablemq serve`: to see the server reach its
 * steady state and to compare server code at the same warmth.
 * `npx tsx bench/tools/steady.ts [rounds=6] [messages=50000] [w2 rounds=0]`. Each w1-e2e round prints its
 * rate and the CPU µs per message of the producers, the consumers, the server and MariaDB; each w2 round its
 * percentiles and the server's CPU per message, with the probe (if loaded) signalled around it.
 * TABLEMQ_BENCH_NODE_ARGS passes flags to the server, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" or
 * "--import ./bench/tools/server-probe.mjs" (statement times, event-loop delay and GC; see that file).
 * Not part of `npm run bench`: a tool for the next optimisation, not a result.
 */
import { cpuMsBetween, snapshot } from "../lib/cpu.js";
import { SYSTEMS } from "../lib/systems.js";
import type { Adapter } from "../lib/types.js";
import { endWorkers } from "../lib/workers.js";
import { FULL, w1EndToEnd, w2Latency } from "../lib/workloads.js";

const rounds = Number(process.argv[2] ?? 6);
const messages = Number(process.argv[3] ?? 50_000);
const latencyRounds = Number(process.argv[4] ?? 0);
const factory = await SYSTEMS["tablemq"]!();
let adapter: Adapter | undefined;
try {
  for (let round = 1; round <= rounds; round++) {
    const opts = { queue: `steady_${round}_${Date.now().toString(36)}`, prefetch: 100, consumers: 4 };
    const current = factory(opts);
    adapter = current;
    await current.prepare();
    const r = await w1EndToEnd({ system: "tablemq", factory, opts, sizes: { ...FULL, w1Messages: messages }, servers: () => current.serverProcesses?.() });
    const server = Object.entries(r.cpu.serverUs ?? {}).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ");
    const lost = r.missing > 0 ? `, ${r.missing} missing` : "";
    console.log(`round ${round}: ${Math.round(r.e2ePerSec)} msg/s; µs/msg: producers ${r.cpu.producersUs.toFixed(1)}, consumers ${r.cpu.consumersUs.toFixed(1)}, ${server}${lost}`);
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
