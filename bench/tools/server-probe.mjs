/**
 * Loaded into `tablemq serve` with `--import` (e.g. TABLEMQ_BENCH_NODE_ARGS="--import ./bench/tools/server-probe.mjs"):
 * records how long each statement took from mysql2's send to its answer (by its first word: INSERT, UPDATE,
 * SELECT, DELETE), the event loop's delay and each GC pause. `kill -USR2 <server pid>` prints the summary to
 * stderr and starts a new one, so one signal before a workload and one after give that workload's numbers;
 * the server also prints it when it exits.
 * A measuring tool only: it patches mysql2 in that process.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { monitorEventLoopDelay, PerformanceObserver, performance } from "node:perf_hooks";

const require = createRequire(import.meta.url);
const Connection = require(join(dirname(require.resolve("mysql2")), "lib/base/connection.js"));
const statements = new Map();
const query = Connection.prototype.query;
Connection.prototype.query = function (sql, values, cb) {
  if (typeof sql !== "string" || typeof cb !== "function") return query.call(this, sql, values, cb);
  const started = performance.now();
  const kind = sql.trimStart().split(/\s/, 1)[0].toUpperCase();
  return query.call(this, sql, values, (err, result, fields) => {
    if (!statements.has(kind)) statements.set(kind, []);
    statements.get(kind).push(performance.now() - started);
    cb(err, result, fields);
  });
};

const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();
const pauses = new Map();
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = { 1: "scavenge", 2: "minor mark-sweep", 4: "mark-sweep-compact", 8: "incremental marking", 16: "weak callbacks" }[e.detail?.kind] ?? String(e.detail?.kind);
    if (!pauses.has(kind)) pauses.set(kind, []);
    pauses.get(kind).push(e.duration);
  }
}).observe({ entryTypes: ["gc"] });

const pct = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
};
const line = (name, values) =>
  `[probe] ${name}: n=${values.length} p50=${pct(values, 0.5).toFixed(2)} p90=${pct(values, 0.9).toFixed(2)} p99=${pct(values, 0.99).toFixed(2)} max=${pct(values, 1).toFixed(2)} ms\n`;

function report() {
  for (const [kind, values] of statements) process.stderr.write(line(`statement ${kind}`, values));
  const ms = (ns) => (ns / 1e6).toFixed(2);
  process.stderr.write(`[probe] event loop delay: p50=${ms(loop.percentile(50))} p99=${ms(loop.percentile(99))} max=${ms(loop.max)} ms\n`);
  for (const [kind, values] of pauses) process.stderr.write(line(`gc ${kind}`, values));
  statements.clear();
  pauses.clear();
  loop.reset();
}
process.on("SIGUSR2", report);
process.on("exit", report);

// TABLEMQ_PROBE_HEAP_DIR=<dir>: between two SIGUSR2s, a sampling heap profile that keeps objects the GC
// already collected (so it shows what is allocated, not what stays), written there as .heapprofile.
// With TABLEMQ_PROBE_HEAP_LIVE=1 it keeps only what is still in the heap at the second signal: what
// survived the young generation (promoted, and not yet collected by a full GC).
// TABLEMQ_PROBE_CPU_DIR=<dir>: between two SIGUSR2s, a CPU profile (100 µs sampling), written there as
// .cpuprofile: a workload's profile without the server's start-up in it.
const heapDir = process.env.TABLEMQ_PROBE_HEAP_DIR;
const cpuDir = process.env.TABLEMQ_PROBE_CPU_DIR;
if (heapDir || cpuDir) {
  const { Session } = await import("node:inspector/promises");
  const { writeFile } = await import("node:fs/promises");
  const session = new Session();
  session.connect();
  if (cpuDir) {
    await session.post("Profiler.enable");
    await session.post("Profiler.setSamplingInterval", { interval: 100 });
  }
  let profiling = false;
  process.on("SIGUSR2", async () => {
    if (profiling && heapDir) {
      const { profile } = await session.post("HeapProfiler.stopSampling");
      await writeFile(join(heapDir, `server-${Date.now()}.heapprofile`), JSON.stringify(profile));
    }
    if (profiling && cpuDir) {
      const { profile } = await session.post("Profiler.stop");
      await writeFile(join(cpuDir, `server-${Date.now()}.cpuprofile`), JSON.stringify(profile));
    }
    if (heapDir) {
      await session.post("HeapProfiler.startSampling", {
        samplingInterval: 4096,
        includeObjectsCollectedByMajorGC: !process.env.TABLEMQ_PROBE_HEAP_LIVE,
        includeObjectsCollectedByMinorGC: !process.env.TABLEMQ_PROBE_HEAP_LIVE,
      });
    }
    if (cpuDir) await session.post("Profiler.start");
    profiling = true;
  });
}
