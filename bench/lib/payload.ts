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

/**
 * A new payload, as an object: each adapter hands it to its client in the form that client's docs use
 * (the object itself for tablemq, BullMQ and pg-boss, whose clients encode it; JSON text from
 * `payloadText` for RabbitMQ and NATS, whose clients carry bytes), so no system pays for another's encoding.
 */
export function makePayload(producer: number, seq: number): BenchPayload {
  return {
    k: `${producer}-${seq}`,
    p: producer,
    t: process.hrtime.bigint().toString(),
    order: { sku: `SKU-${(seq * 7919) % 100000}`, qty: (seq % 9) + 1, price: 1999 + (seq % 500), currency: "EUR", note: "x".repeat(80) },
  };
}

/** The payload as JSON text, for clients that carry bytes. */
export const payloadText = (payload: BenchPayload): string => JSON.stringify(payload);

/**
 * The key and publish time of a received payload: the object a client decoded, or JSON text (read without
 * a full parse on the hot path).
 */
export function readPayload(payload: string | BenchPayload): { k: string; t: bigint } {
  if (typeof payload !== "string") {
    const { k, t } = payload ?? {};
    if (typeof k !== "string" || typeof t !== "string") throw new Error(`not a benchmark payload: ${JSON.stringify(payload)?.slice(0, 80)}`);
    return { k, t: BigInt(t) };
  }
  const k = /"k":"([^"]+)"/.exec(payload)?.[1];
  const t = /"t":"(\d+)"/.exec(payload)?.[1];
  if (!k || !t) throw new Error(`not a benchmark payload: ${payload.slice(0, 80)}`);
  return { k, t: BigInt(t) };
}
