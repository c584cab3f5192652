/** Reading a server's Prometheus text (GET /metrics) in the benchmark: one metric's samples, summed. */

/** `name{a="x",b="y"} 12` or `name 12`; comments and other metrics do not match. */
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/**
 * The sum of metric `name`'s samples whose labels include every one of `labels` (all of its samples when
 * none is given); 0 when none matches, as a counter that has not counted yet is absent.
 */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    const m = SAMPLE.exec(line);
    if (!m || m[1] !== name) continue;
    const found = new Map([...(m[2] ?? "").matchAll(LABEL)].map(([, k, v]) => [k!, v!.replace(/\\(.)/g, "$1")]));
    if (Object.entries(labels).every(([k, v]) => found.get(k) === v)) sum += Number(m[3]);
  }
  return sum;
}

/** GET `url`/metrics. */
export async function scrape(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`);
  if (!res.ok) throw new Error(`${url}/metrics answered ${res.status}`);
  return res.text();
}
