/**
 * Rounds of w1-e2e against one `tablemq serve`, to see the server reach its steady state and to compare
 * server code at the same warmth: `npx tsx bench/tools/steady.ts [rounds=6] [messages=50000]`. Each round
 * prints its rate and the CPU µs per message of the producers, the consumers, the server and MariaDB.
 * TABLEMQ_BENCH_NODE_ARGS passes flags to the server, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" or
 * "--import ./bench/tools/server-probe.mjs" (statement times, event-loop delay and GC; see that file).
 * Not part of `npm run bench`: a tool for the next optimisation, not a result.
 */
import { SYSTEMS } from "../lib/systems.js";
import type { Adapter } from "../lib/types.js";
import { FULL, w1EndToEnd } from "../lib/workloads.js";

const rounds = Number(process.argv[2] ?? 6);
const messages = Number(process.argv[3] ?? 50_000);
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
} finally {
  await adapter?.shutdown?.();
}
