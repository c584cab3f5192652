/**
 * Two tablemq servers compared round by round, for an optimisation's before/after on a box whose speed drifts.
 *
 * `npx tsx bench/tools/ab.ts [--rounds 10] [--warmup 4] [--messages 50000] [--b-env "K=V …"] [--b-args "…"]
 * [--b-cli <other checkout>/src/cli/main.ts]` (and the same --a-* for A; env values without spaces)
 *
 * This box's speed moves by ±20 % within minutes (MariaDB's CPU per message went from 20 to 30 µs within
 * an hour, on the same code), so an A/B of two runs one after the other measures the box. Here both servers
 * run at once, on the same MariaDB, with the same producer and consumer processes, and take turns: after
 * `warmup` untimed rounds each, every pair of rounds runs w1-e2e on A and on B, the order swapped each pair
 * (AB, BA, …) so neither always goes first. Each pair gives B − A in CPU µs per message (producers,
 * consumers, server, MariaDB, total); the summary gives their medians and how many pairs B won. B differs by
 * its environment (--b-env, e.g. a switch under test), its Node flags (--b-args), or its code (--b-cli:
 * another checkout, e.g. a `git worktree`, with its own node_modules). With nothing given, it is an A/A
 * test: how far apart two identical servers come out here.
 * Not part of `npm run bench`: a tool for the next optimisation, not a result.
 */
import { Command } from "commander";
import { SYSTEMS } from "../lib/systems.js";
import { median } from "../lib/pairs.js";
import { type ServerProcess, stopServerProcess } from "../lib/server-process.js";
import { endWorkers } from "../lib/workers.js";
import { FULL, w1EndToEnd } from "../lib/workloads.js";
import { words } from "../lib/server-flags.js";
import { dropTable, ensureBenchDatabase, freshTable, serverSide, startServer } from "../systems/tablemq.js";

const flags = new Command()
  .option("--rounds <n>", "timed pairs of rounds", "10")
  .option("--warmup <n>", "untimed rounds per server first", "4")
  .option("--messages <n>", "messages per round", "50000")
  .option("--a-env <K=V …>", "environment added to server A")
  .option("--a-args <flags>", "Node flags added to server A")
  .option("--a-cli <path>", "server A's src/cli/main.ts (default: this checkout's)")
  .option("--b-env <K=V …>", "environment added to server B")
  .option("--b-args <flags>", "Node flags added to server B")
  .option("--b-cli <path>", "server B's src/cli/main.ts (default: this checkout's)")
  .parse()
  .opts<Record<string, string | undefined>>();

const COLUMNS = ["producers", "consumers", "server", "mariadb", "total"] as const;
type Cpu = Record<(typeof COLUMNS)[number], number>;

interface Side {
  name: "A" | "B";
  server: ServerProcess;
}

type ServerOptions = Parameters<typeof startServer>[0];

/** Server A's or B's options from the command line; throws on a malformed --a-env / --b-env. */
function serverOptions(key: "a" | "b"): ServerOptions {
  const env = Object.fromEntries(
    words(flags[`${key}Env`]).map((kv) => {
      const eq = kv.indexOf("=");
      if (eq < 1) throw new Error(`--${key}-env: ${JSON.stringify(kv)} is not K=V`);
      return [kv.slice(0, eq), kv.slice(eq + 1)];
    }),
  );
  const cli = flags[`${key}Cli`];
  return { nodeArgs: words(flags[`${key}Args`]), env, ...(cli ? { cli } : {}) };
}

const factory = await SYSTEMS["tablemq"]!();
let round = 0;

/** One w1-e2e on a fresh table of `side`'s server: msg/s and CPU µs per message. */
async function once(side: Side, messages: number): Promise<{ perSec: number; cpu: Cpu }> {
  const queue = `ab_${side.name.toLowerCase()}${++round}_${Date.now().toString(36)}`;
  const endpoint = side.server.url;
  await freshTable(endpoint, queue);
  try {
    const opts = { queue, prefetch: 100, consumers: 4, endpoint };
    const servers = () => serverSide(side.server.child.pid);
    const r = await w1EndToEnd({ system: "tablemq", factory, opts, sizes: { ...FULL, w1Messages: messages }, servers });
    if (r.missing > 0 || r.stopped) throw new Error(`server ${side.name}: ${r.missing} missing ${r.stopped ?? ""}`);
    const s = r.cpu.serverUs ?? {};
    const cpu = {
      producers: r.cpu.producersUs,
      consumers: r.cpu.consumersUs,
      server: s["tablemq"] ?? NaN,
      mariadb: s["mariadb"] ?? NaN,
      total: 0,
    };
    cpu.total = cpu.producers + cpu.consumers + cpu.server + cpu.mariadb;
    return { perSec: r.e2ePerSec, cpu };
  } finally {
    await dropTable(endpoint, queue);
  }
}

const fmt = (cpu: Cpu) => COLUMNS.map((c) => `${c} ${cpu[c].toFixed(1)}`).join(", ");
const options = { A: serverOptions("a"), B: serverOptions("b") }; // both checked before anything starts
await ensureBenchDatabase();
const a: Side = { name: "A", server: await startServer(options.A) };
let b: Side | undefined;
try {
  b = { name: "B", server: await startServer(options.B) };
  const messages = Number(flags["messages"]);
  for (let i = 0; i < Number(flags["warmup"]); i++) {
    for (const side of i % 2 ? [b, a] : [a, b]) {
      const r = await once(side, messages);
      console.log(`warm-up ${i + 1} ${side.name}: ${Math.round(r.perSec)} msg/s; µs/msg: ${fmt(r.cpu)}`);
    }
  }
  const diffs: Cpu[] = [];
  const rates: Array<[number, number]> = [];
  for (let i = 0; i < Number(flags["rounds"]); i++) {
    const out: Partial<Record<"A" | "B", { perSec: number; cpu: Cpu }>> = {};
    for (const side of i % 2 ? [b, a] : [a, b]) out[side.name] = await once(side, messages);
    const [ra, rb] = [out.A!, out.B!];
    const d = Object.fromEntries(COLUMNS.map((c) => [c, rb.cpu[c] - ra.cpu[c]])) as Cpu;
    diffs.push(d);
    rates.push([ra.perSec, rb.perSec]);
    console.log(
      `pair ${i + 1} (${i % 2 ? "BA" : "AB"}): A ${Math.round(ra.perSec)} msg/s, ${fmt(ra.cpu)} | B ${Math.round(rb.perSec)} msg/s, ${fmt(rb.cpu)} | B − A: ${fmt(d)}`,
    );
  }
  console.log(`\nB − A, CPU µs per message, median over ${diffs.length} pairs (negative: B is cheaper):`);
  for (const c of COLUMNS) {
    const v = diffs.map((d) => d[c]);
    console.log(
      `  ${c.padEnd(9)} ${median(v).toFixed(2).padStart(6)}   B cheaper in ${v.filter((x) => x < 0).length} of ${v.length}: ${v.map((x) => x.toFixed(1)).join(" ")}`,
    );
  }
  const ratio = median(rates.map(([ra, rb]) => rb / ra));
  console.log(`  msg/s B ÷ A, median: ${ratio.toFixed(3)}`);
} finally {
  await stopServerProcess(a.server);
  await stopServerProcess(b?.server);
  endWorkers();
}
