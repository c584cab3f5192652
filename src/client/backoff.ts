/** Reconnect delays: capped exponential backoff with jitter. */
import { invalidArgument } from "./http.js";

export interface ReconnectOptions {
  /** First delay (and the smallest), default 100 ms. */
  minDelayMs?: number;
  /** Largest delay, default 10 s. */
  maxDelayMs?: number;
}

export const DEFAULT_RECONNECT: Required<ReconnectOptions> = { minDelayMs: 100, maxDelayMs: 10_000 };

/**
 * The delay before reconnect attempt `attempt` (0 = the first after a drop): `minDelayMs * 2^attempt`,
 * times a jitter uniform in [0.5, 1.5) so a crowd of clients does not reconnect in step, clamped to
 * [minDelayMs, maxDelayMs]. `random` returns [0, 1) like Math.random.
 */
export function reconnectDelay(attempt: number, options: ReconnectOptions = {}, random: () => number = Math.random): number {
  const { minDelayMs, maxDelayMs } = resolveReconnect(options);
  const exponent = Math.min(Math.max(0, Math.floor(attempt)), 30); // 2^30 already exceeds any sane cap
  const base = Math.min(maxDelayMs, minDelayMs * 2 ** exponent);
  const jittered = Math.floor(base * (0.5 + random()));
  return Math.min(maxDelayMs, Math.max(minDelayMs, jittered));
}

export function resolveReconnect(options: ReconnectOptions = {}): Required<ReconnectOptions> {
  const minDelayMs = options.minDelayMs ?? DEFAULT_RECONNECT.minDelayMs;
  const maxDelayMs = options.maxDelayMs ?? Math.max(DEFAULT_RECONNECT.maxDelayMs, minDelayMs);
  if (!(Number.isFinite(minDelayMs) && minDelayMs >= 0))
    throw invalidArgument("reconnect.minDelayMs", `must be a number >= 0, got ${minDelayMs}`);
  if (!(Number.isFinite(maxDelayMs) && maxDelayMs >= minDelayMs)) {
    throw invalidArgument("reconnect.maxDelayMs", `must be a number >= minDelayMs (${minDelayMs}), got ${maxDelayMs}`);
  }
  return { minDelayMs, maxDelayMs };
}
