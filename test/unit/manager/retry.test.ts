import { describe, expect, it } from "vitest";
import { retryUnknown } from "../../../src/manager/retry.js";
import { OutcomeUnknownError, TableNotFoundError, UnavailableError } from "../../../src/errors.js";
import { silentLogger } from "../../../src/logger.js";
import { FakeClock } from "../../support/fake-clock.js";

/** A write that fails with each of `failures` in turn, then answers "ok"; records when it ran. */
function scripted(clock: FakeClock, failures: Error[]) {
  const calls: number[] = [];
  const write = async () => {
    calls.push(clock.now());
    const failure = failures.shift();
    if (failure) throw failure;
    return "ok";
  };
  return { calls, write };
}

const lost = () => new OutcomeUnknownError("connection lost after the statement was sent");
const refused = () => new UnavailableError("cannot connect");

describe("retryUnknown", () => {
  it("answers with the first attempt when it succeeds", async () => {
    const clock = new FakeClock();
    const w = scripted(clock, []);
    expect(await retryUnknown(w.write, { clock, windowMs: 1_000, log: silentLogger, what: "t" })).toEqual({ value: "ok", retried: false });
    expect(w.calls).toHaveLength(1);
  });

  it("does not send again a write that was never sent: UnavailableError passes through at once", async () => {
    const clock = new FakeClock();
    const w = scripted(clock, [refused()]);
    await expect(retryUnknown(w.write, { clock, windowMs: 1_000, log: silentLogger, what: "t" })).rejects.toBeInstanceOf(UnavailableError);
    expect(w.calls).toHaveLength(1);
  });

  it("sends a write whose outcome is unknown again at once, and answers with the retry's value", async () => {
    const clock = new FakeClock();
    const w = scripted(clock, [lost()]);
    expect(await retryUnknown(w.write, { clock, windowMs: 1_000, log: silentLogger, what: "t" })).toEqual({ value: "ok", retried: true });
    expect(w.calls).toEqual([clock.now(), clock.now()]);
  });

  it("keeps trying with a growing wait while the database is away, within the window", async () => {
    const clock = new FakeClock();
    const start = clock.now();
    const w = scripted(clock, [lost(), refused(), refused(), lost(), refused()]);
    const result = retryUnknown(w.write, { clock, windowMs: 1_000, log: silentLogger, what: "t" });
    await clock.advance(1_000);
    expect(await result).toEqual({ value: "ok", retried: true });
    expect(w.calls.map((t) => t - start)).toEqual([0, 0, 50, 150, 350, 750]);
  });

  it("fails with OutcomeUnknownError, never UnavailableError, when no retry gets an answer; the last try starts as the window ends", async () => {
    const clock = new FakeClock();
    const start = clock.now();
    const w = scripted(clock, [lost(), ...Array.from({ length: 20 }, refused)]);
    const result = retryUnknown(w.write, { clock, windowMs: 1_000, log: silentLogger, what: "t" });
    result.catch(() => {});
    await clock.advance(2_000);
    await expect(result).rejects.toBeInstanceOf(OutcomeUnknownError);
    expect(w.calls.map((t) => t - start)).toEqual([0, 0, 50, 150, 350, 750, 1_000]);
  });

  it("reports another failure of a retry as OutcomeUnknownError: the first attempt's outcome is still unknown", async () => {
    const clock = new FakeClock();
    const w = scripted(clock, [lost(), new TableNotFoundError("t")]);
    const err = await retryUnknown(w.write, { clock, windowMs: 1_000, log: silentLogger, what: "t" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutcomeUnknownError);
    expect((err as Error).cause).toBeInstanceOf(TableNotFoundError);
  });
});
