/** Small statistics helpers for the benchmark reports. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function summarize(values: number[]): { p50: number; p90: number; p99: number; max: number; n: number } {
  const s = [...values].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), max: s.at(-1) ?? NaN, n: s.length };
}

export interface Delivery {
  unique: number;
  missing: number;
  duplicates: number;
  /** Why the drain stopped before everything arrived (a time limit, a stall); the rest is in `missing`. */
  stopped?: string;
}

/** Checks what the consumers got against what was published (keys "producer-seq"). */
export function checkDelivery(published: Array<{ producer: number; count: number }>, received: string[][]): Delivery {
  const seen = new Set<string>();
  let duplicates = 0;
  for (const keys of received) {
    for (const k of keys) {
      if (seen.has(k)) duplicates++;
      else seen.add(k);
    }
  }
  let expected = 0;
  let missing = 0;
  for (const { producer, count } of published) {
    expected += count;
    for (let i = 0; i < count; i++) if (!seen.has(`${producer}-${i}`)) missing++;
  }
  return { unique: seen.size, missing, duplicates: duplicates + Math.max(0, seen.size - (expected - missing)) };
}

export const rate = (count: number, startNs: bigint, endNs: bigint): number => count / (Number(endNs - startNs) / 1e9);
