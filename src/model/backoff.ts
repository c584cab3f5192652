/**
 * Jittered exponential backoff, as Vitess computes it in its postpone query:
 *
 *   backoff = clamp(floor((minBackoff << epoch) * jitter), minBackoff, maxBackoff)   (maxBackoff 0 = unbounded)
 *
 * with jitter uniform in [0.666666, 1.333332). Our changes: the shift is capped (MAX_BACKOFF_NS) so a
 * message with a high epoch cannot overflow BIGINT and wrap back to minBackoff; and maxBackoff 0 ("no
 * maximum") stops the growth at one day (UNSET_MAX_BACKOFF_MS, or minBackoff if that is longer), where the
 * doubling would otherwise park a message for decades (~73 years at epoch 36 of a 30 s minimum). The store
 * evaluates the same formula in SQL per row; this module is the reference both are tested against.
 */
export const JITTER_MIN = 0.666666;
export const JITTER_SPAN = 0.666666;

/** The largest un-jittered backoff: 2^61 ns (~73 years), so now + wait + backoff * 1.34 fits in BIGINT. */
export const MAX_BACKOFF_NS = 2n ** 61n;

export type Random = () => number;

/** The longest backoff when maxBackoffMs is 0: a day. */
export const UNSET_MAX_BACKOFF_MS = 86_400_000;

/** The backoff's maximum: maxBackoffMs, or when that is 0, a day (minBackoffMs if longer). */
export function maxBackoffOf(minBackoffMs: number, maxBackoffMs: number): number {
  return maxBackoffMs > 0 ? maxBackoffMs : Math.max(UNSET_MAX_BACKOFF_MS, minBackoffMs);
}

export function jitter(random: Random = Math.random): number {
  return JITTER_MIN + random() * JITTER_SPAN;
}

/** The largest shift of `minBackoffNs` that stays within MAX_BACKOFF_NS. */
export function maxShift(minBackoffNs: bigint): number {
  if (minBackoffNs <= 0n) return 0;
  let shift = 0;
  while (minBackoffNs << BigInt(shift + 1) <= MAX_BACKOFF_NS) shift++;
  return shift;
}

export function msToNs(ms: number): bigint {
  return BigInt(Math.round(ms * 1e6));
}

/**
 * A ns value as read from a BIGINT column (a decimal string, or a bigint) → epoch ms with microsecond precision,
 * rounded to the nearest microsecond rather than truncated: msToNs() of a current-era time is only
 * exact to ~±128 ns (a double's granule at 1.7e18 is 256), so rounding gives back exactly the
 * microsecond-precise ms value that was stored, where truncation could lose 1 µs.
 */
export function nsToMs(ns: string | number | bigint): number {
  const n = BigInt(ns);
  const us = n >= 0n ? (n + 500n) / 1000n : -((-n + 500n) / 1000n);
  return Number(us) / 1000;
}

/** Backoff in nanoseconds for a message that has been delivered `epoch` times before this postpone. */
export function backoffNs(minBackoffMs: number, maxBackoffMs: number, epoch: number, j: number): bigint {
  const min = msToNs(minBackoffMs);
  const max = msToNs(maxBackoffOf(minBackoffMs, maxBackoffMs));
  const shift = Math.min(Math.max(0, epoch), maxShift(min));
  const raw = BigInt(Math.floor(Number(min << BigInt(shift)) * j));
  if (raw < min) return min;
  if (max > 0n && raw > max) return max;
  return raw;
}

export function backoffMs(minBackoffMs: number, maxBackoffMs: number, epoch: number, j: number): number {
  return Number(backoffNs(minBackoffMs, maxBackoffMs, epoch, j)) / 1e6;
}
