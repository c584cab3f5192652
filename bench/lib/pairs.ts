/**
 * Paired rounds: ratios that hold while the machine's speed drifts.
 *
 * This box's speed moves by up to ±20 % within an hour, and every process on it moves together (the ceiling
 * measured 43.6k, 52.3k and 58.3k msg/s in one run). A ratio of two numbers measured ten minutes apart
 * carries that drift. So after the workloads, every system runs w1-e2e once per round, back to back with the
 * others and with the ceiling, its order rotated each round so no system always goes first; each round gives
 * one ratio per pair, and the report takes the median over the rounds.
 *
 * A Node process left idle for a minute comes back slow: after 60 s idle, tablemq's server spent 32–51 µs
 * per message on the next 50,000 instead of 20, and its Node producers and consumers ~1.7× their warm CPU
 * (after 200–300 s: 45–57 µs). The cause is V8's memory reducer, which shrinks an idle process's heap;
 * tablemq's server now runs without it (README "Running it"), but every system's load generators are Node
 * processes with V8's defaults. Between two of its rounds every system waits for all the others, so each
 * timed run follows an untimed one of the same size, right before it.
 */
import { ceiling } from "./ceiling.js";
import { boxBusyMs } from "./cpu.js";
import type { AdapterFactory } from "./types.js";
import { consumersOf, type Sizes, w1EndToEnd } from "./workloads.js";

/** The bare-MySQL ceiling's name in the rounds. */
export const CEILING = "ceiling";

export interface PairedRounds {
  /** Who ran in each round, in order. */
  orders: string[][];
  /** w1-e2e msg/s (the ceiling's msg/s) by name, one per round; null where that measurement failed. */
  perSec: Record<string, Array<number | null>>;
  /** Total CPU µs per message (load generators + server side) by system, one per round. */
  cpuUs: Record<string, Array<number | null>>;
  /** CPU µs per message the rest of the box used meanwhile (its busy time minus the above), by system, one per round. */
  otherUs: Record<string, Array<number | null>>;
  /** What failed, e.g. "round 2 bullmq: 3 missing". */
  errors: string[];
}

export interface PairedSystem {
  name: string;
  factory: AdapterFactory;
}

/** Rotates `names` left by `by`: round r starts with the r-th name. */
export const rotate = <T>(names: readonly T[], by: number): T[] => names.map((_, i) => names[(i + by) % names.length]!);

export async function pairedRounds(
  systems: readonly PairedSystem[],
  sizes: Sizes,
  databaseUrl: string,
  log: (msg: string) => void,
): Promise<PairedRounds> {
  const names = [...systems.map((s) => s.name), CEILING];
  const out: PairedRounds = { orders: [], perSec: {}, cpuUs: {}, otherUs: {}, errors: [] };
  for (const name of names) {
    out.perSec[name] = [];
    if (name === CEILING) continue;
    out.cpuUs[name] = [];
    out.otherUs[name] = [];
  }
  for (let round = 0; round < sizes.pairRounds; round++) {
    const order = rotate(names, round);
    out.orders.push(order);
    for (const name of order) {
      let perSec: number | null = null;
      let cpu: number | null = null;
      let other: number | null = null;
      try {
        if (name === CEILING) {
          perSec = (await ceiling(databaseUrl, sizes.ceilingMessages)).perSec;
        } else {
          const system = systems.find((s) => s.name === name)!;
          await e2eOnce(system, sizes, round); // untimed: warm again after waiting for the others
          [perSec, cpu, other] = await e2eOnce(system, sizes, round);
        }
        log(`paired round ${round + 1}/${sizes.pairRounds} ${name}: ${Math.round(perSec)} msg/s`);
      } catch (err) {
        out.errors.push(`round ${round + 1} ${name}: ${(err as Error).message.split("\n")[0]}`);
        log(`paired round ${round + 1} ${name} failed: ${(err as Error).message}`);
      }
      out.perSec[name]!.push(perSec);
      if (name !== CEILING) {
        out.cpuUs[name]!.push(cpu);
        out.otherUs[name]!.push(other);
      }
    }
  }
  return out;
}

/**
 * One w1-e2e on a fresh queue: [msg/s, total CPU µs per message, µs per message the rest of the box used].
 * A lost message fails it.
 */
async function e2eOnce({ name, factory }: PairedSystem, sizes: Sizes, round: number): Promise<[number, number | null, number | null]> {
  const opts = { queue: `bench_pair${round + 1}_${Date.now().toString(36)}`, prefetch: 100, consumers: consumersOf("w1-e2e") };
  const adapter = factory(opts);
  try {
    await adapter.prepare();
    const box0 = await boxBusyMs();
    const r = await w1EndToEnd({ system: name, factory, opts, sizes, servers: () => adapter.serverProcesses?.() });
    const box1 = await boxBusyMs();
    if (r.missing > 0 || r.stopped) throw new Error(`${r.missing} missing${r.stopped ? ` (${r.stopped})` : ""}`);
    const server = r.cpu.serverUs ? Object.values(r.cpu.serverUs).reduce((a, b) => a + b, 0) : null;
    const cpu = server === null ? null : r.cpu.producersUs + r.cpu.consumersUs + server;
    // The box's busy time spans the consumers' start-up and the drain's tail too, so `other` is an upper bound.
    const other = cpu === null || box0 === undefined || box1 === undefined ? null : ((box1 - box0) * 1000) / r.unique - cpu;
    return [r.e2ePerSec, cpu, other];
  } finally {
    await adapter.cleanup().catch(() => {});
  }
}

/** The median of the measured values (null: not measured); NaN when none was. */
export function median(values: ReadonlyArray<number | null>): number {
  const s = values.filter((v): v is number => v !== null).sort((x, y) => x - y);
  const mid = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The per-round ratios a[i] ÷ b[i] (null where either was not measured) and their median. */
export function medianRatio(
  a: ReadonlyArray<number | null>,
  b: ReadonlyArray<number | null>,
): { median: number; ratios: Array<number | null> } {
  const ratios = a.map((x, i) => {
    const y = b[i];
    return x != null && y != null && y > 0 ? x / y : null;
  });
  return { median: median(ratios), ratios };
}
