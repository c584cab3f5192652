/**
 * Settling a write whose outcome is unknown (RELIABILITY.md, problem 1). When the connection is lost or
 * times out after a statement was sent, the statement may have committed. Enqueue, ack and postpone are
 * idempotent (an id that exists is not inserted again; an acked row is not acked again; a postpone sets
 * the same fields again), so the same write is sent again on a fresh connection: its answer settles the
 * outcome. Retries go on for `windowMs` after the first unknown outcome, with a short backoff; if none gets
 * an answer, the write fails with OutcomeUnknownError, never with "nothing was written".
 */
import type { Clock } from "../clock.js";
import { OutcomeUnknownError, OverloadedError, UnavailableError } from "../errors.js";
import type { Logger } from "../logger.js";

export interface RetryOptions {
  clock: Clock;
  /** How long after the first unknown outcome a retry may still start. */
  windowMs: number;
  log: Logger;
  /** Names the write in logs. */
  what: string;
}

export interface Retried<T> {
  value: T;
  /** True when the value comes from a retry: the first attempt's outcome was unknown. */
  retried: boolean;
}

/** Waits before each retry: none, then doubling from 50 ms up to 1 s. */
const DELAYS_MS = [0, 50, 100, 200, 400, 800, 1_000];

/** Runs `write`; while its outcome is unknown, runs it again (see the module comment). */
export async function retryUnknown<T>(write: () => Promise<T>, opts: RetryOptions): Promise<Retried<T>> {
  let unknown: OutcomeUnknownError;
  try {
    return { value: await write(), retried: false };
  } catch (err) {
    if (!(err instanceof OutcomeUnknownError)) throw err;
    unknown = err;
  }
  const { clock, log, what } = opts;
  const until = clock.now() + opts.windowMs;
  log.warn({ err: unknown, what }, "write outcome unknown; sending it again");
  for (let attempt = 0; attempt === 0 || clock.now() < until; attempt++) {
    // The last wait is cut short so that one more try starts as the window ends.
    const delay = Math.min(DELAYS_MS[Math.min(attempt, DELAYS_MS.length - 1)]!, until - clock.now());
    if (delay > 0) await sleep(clock, delay);
    try {
      const value = await write();
      log.info({ what, retries: attempt + 1 }, "write outcome settled by a retry");
      return { value, retried: true };
    } catch (err) {
      // The database is still away or busy: try again while the window lasts.
      if (err instanceof UnavailableError || err instanceof OutcomeUnknownError || err instanceof OverloadedError) continue;
      // Any other answer concerns the retry; the first attempt's outcome is still unknown.
      throw new OutcomeUnknownError(unknown.message, [], { cause: err });
    }
  }
  log.warn({ err: unknown, what, windowMs: opts.windowMs }, "write outcome still unknown after retrying");
  throw unknown;
}

function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}

/**
 * retryUnknown for a write about `ids`: when its outcome stays unknown, the error names them, so the client
 * can resend the same request (enqueue, ack and postpone are idempotent).
 */
export async function retryWrite<T>(ids: readonly string[], write: () => Promise<T>, opts: RetryOptions): Promise<Retried<T>> {
  try {
    return await retryUnknown(write, opts);
  } catch (err) {
    if (err instanceof OutcomeUnknownError && ids.length > 0) throw new OutcomeUnknownError(err.message, ids, { cause: err.cause ?? err });
    throw err;
  }
}
