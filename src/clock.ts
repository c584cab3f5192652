/**
 * Every time source in tablemq goes through a Clock, so the manager can be driven by fake time in tests.
 * Times are epoch milliseconds (fractional allowed); the store converts to Vitess's nanoseconds at the edge.
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export type TimerHandle = { readonly __timer: unique symbol } | object;

/** Node fires any timeout above 2^31 - 1 ms after 1 ms: longer waits are chained. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

interface SystemTimer {
  timer: NodeJS.Timeout | undefined;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const handle: SystemTimer = { timer: undefined };
    const arm = (left: number): void => {
      handle.timer = setTimeout(() => (left > MAX_TIMEOUT_MS ? arm(left - MAX_TIMEOUT_MS) : fn()), Math.min(left, MAX_TIMEOUT_MS));
      handle.timer.unref?.();
    };
    arm(Math.max(0, ms));
    return handle;
  },
  clearTimeout: (handle) => clearTimeout((handle as SystemTimer).timer),
};
