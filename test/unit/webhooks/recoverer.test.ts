import { describe, expect, it } from "vitest";
import { DEFAULT_RETRY, Recoverer, retryDelayMs } from "../../../src/webhooks/recoverer.js";
import { FakeClock } from "../../support/fake-clock.js";

describe("retryDelayMs", () => {
  it("starts at 1 s, doubles per failure and stops at 512 s by default", () => {
    const delays = Array.from({ length: 13 }, (_, i) => retryDelayMs(DEFAULT_RETRY, i + 1) / 1000);
    expect(delays).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 512, 512, 512]);
  });

  it("stays finite and capped after very many failures", () => {
    expect(retryDelayMs({ minDelayMs: 50, maxDelayMs: 400 }, 10_000)).toBe(400);
  });
});

describe("Recoverer", () => {
  const setup = () => {
    const clock = new FakeClock();
    const retries: number[] = [];
    const recoverer = new Recoverer(
      clock,
      () => ({ minDelayMs: 100, maxDelayMs: 350 }),
      () => retries.push(clock.now()),
    );
    return { clock, retries, recoverer, t0: clock.now() };
  };

  it("retries after the backoff for the failures so far, never before", async () => {
    const { clock, retries, recoverer, t0 } = setup();
    expect(recoverer.failed()).toBe(100);
    expect(recoverer.nextRetryAt).toBe(t0 + 100);
    await clock.advance(99);
    expect(retries).toEqual([]);
    await clock.advance(1);
    expect(retries).toEqual([t0 + 100]);
    expect(recoverer.scheduled).toBe(false);
    expect(recoverer.failed()).toBe(200);
    await clock.advance(200);
    expect(recoverer.failed()).toBe(350); // capped
    await clock.advance(350);
    expect(retries).toEqual([t0 + 100, t0 + 300, t0 + 650]);
    expect(recoverer.failures).toBe(3);
  });

  it("starts again from the shortest wait after a success", async () => {
    const { clock, recoverer } = setup();
    recoverer.failed();
    await clock.advance(100);
    recoverer.failed();
    await clock.advance(200);
    recoverer.succeeded();
    expect(recoverer.failures).toBe(0);
    expect(recoverer.failed()).toBe(100);
  });

  it("keeps one retry scheduled at most, and cancel drops it", async () => {
    const { clock, retries, recoverer } = setup();
    recoverer.failed();
    recoverer.failed(); // replaces the first: one timer, the longer wait
    expect(clock.pendingTimers).toBe(1);
    recoverer.cancel();
    expect(recoverer.nextRetryAt).toBeUndefined();
    await clock.advance(1_000);
    expect(retries).toEqual([]);
  });
});
