/**
 * The benchmark's message: a JSON object of about 200 bytes with a unique key (producer index and
 * sequence), the publish time from process.hrtime (CLOCK_MONOTONIC on Linux: comparable across processes
 * on one machine) and a few order-like fields.
 */
export interface BenchPayload {
  k: string;
  p: number;
  t: string;
  order: { sku: string; qty: number; price: number; currency: string; note: string };
}

export function makePayload(producer: number, seq: number): string {
  const body: BenchPayload = {
    k: `${producer}-${seq}`,
    p: producer,
    t: process.hrtime.bigint().toString(),
    order: { sku: `SKU-${(seq * 7919) % 100000}`, qty: (seq % 9) + 1, price: 1999 + (seq % 500), currency: "EUR", note: "x".repeat(80) },
  };
  return JSON.stringify(body);
}

/** Pulls the key and publish time out of a payload without a full parse on the hot path. */
export function readPayload(payload: string): { k: string; t: bigint } {
  const k = /"k":"([^"]+)"/.exec(payload)?.[1];
  const t = /"t":"(\d+)"/.exec(payload)?.[1];
  if (!k || !t) throw new Error(`not a benchmark payload: ${payload.slice(0, 80)}`);
  return { k, t: BigInt(t) };
}
