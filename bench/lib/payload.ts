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

/** The size of a large-payload workload's message, as JSON text (100 KiB). */
export const LARGE_PAYLOAD_BYTES = 100 * 1024;

/**
 * A large benchmark payload (the large-payload workload): a BenchPayload (so every adapter carries it as it
 * carries the small one) with a `doc` of a few numbers and a long string, `body`, sized so that the JSON text
 * of the whole payload is exactly `bytes` long. The body is deterministic: a slice of one pseudo-random text
 * (fixed seed, letters, digits and spaces, so JSON needs no escapes), starting at an offset that follows the
 * sequence number; the same for every system. `k` and `t` come first, so readPayload finds them at once.
 */
export function makeLargePayload(producer: number, seq: number, bytes: number): BenchPayload & { doc: LargeDoc } {
  const payload = { ...makePayload(producer, seq), doc: { seq, version: 3, score: ((seq * 7919) % 1000) / 10, body: "" } };
  const room = bytes - JSON.stringify(payload).length;
  if (room < 0) throw new Error(`a large payload cannot be as small as ${bytes} bytes`);
  const offset = (seq * 131) % FILLER_OFFSETS;
  payload.doc.body = filler(offset + room).slice(offset, offset + room);
  return payload;
}

interface LargeDoc {
  seq: number;
  version: number;
  score: number;
  body: string;
}

const FILLER_OFFSETS = 4096;
let fillerText = "";
/** The first `length` characters of the fixed pseudo-random text (mulberry32, seed 0x7ab1e; grown on demand). */
function filler(length: number): string {
  if (fillerText.length >= length) return fillerText;
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789      ";
  let state = 0x7ab1e;
  const next = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const size = Math.max(length, 2 * fillerText.length);
  const chars = new Array<string>(size);
  for (let i = 0; i < size; i++) chars[i] = alphabet[Math.floor(next() * alphabet.length)]!;
  fillerText = chars.join("");
  return fillerText;
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
    if (typeof k !== "string" || typeof t !== "string")
      throw new Error(`not a benchmark payload: ${JSON.stringify(payload)?.slice(0, 80)}`);
    return { k, t: BigInt(t) };
  }
  const k = /"k":"([^"]+)"/.exec(payload)?.[1];
  const t = /"t":"(\d+)"/.exec(payload)?.[1];
  if (!k || !t) throw new Error(`not a benchmark payload: ${payload.slice(0, 80)}`);
  return { k, t: BigInt(t) };
}
