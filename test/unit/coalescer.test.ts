import { describe, expect, it } from "vitest";
import { Coalescer } from "../../src/coalescer.js";
import { OverloadedError, RejectedWriteError, UnavailableError } from "../../src/errors.js";
import { FakeClock, settle } from "../support/fake-clock.js";

/** A writer whose statements finish only when the test says so. */
function gatedWriter() {
  const statements: number[][] = [];
  const gates: Array<() => void> = [];
  let fail: Error | undefined;
  const write = async (items: number[]) => {
    statements.push(items);
    await new Promise<void>((r) => gates.push(r));
    if (fail) throw fail;
    return items.map((i) => i * 10);
  };
  return {
    statements,
    write,
    openAll: () => gates.splice(0).forEach((g) => g()),
    failWith: (e: Error) => (fail = e),
  };
}

describe("Coalescer", () => {
  it("writes a lone request at once, in a statement of its own", async () => {
    const w = gatedWriter();
    const c = new Coalescer({ maxItems: 100, maxQueued: 1000, concurrency: 1, write: w.write });
    const p = c.submit([1, 2]);
    await settle(1);
    expect(w.statements).toEqual([[1, 2]]);
    w.openAll();
    expect(await p).toEqual([10, 20]);
  });

  it("puts requests that arrive while the writers are busy into one statement, each getting its own results", async () => {
    const w = gatedWriter();
    const c = new Coalescer({ maxItems: 100, maxQueued: 1000, concurrency: 1, write: w.write });
    const first = c.submit([1]);
    await settle(1);
    const waiting = [c.submit([2, 3]), c.submit([4]), c.submit([5, 6, 7])];
    await settle(1);
    expect(w.statements).toEqual([[1]]); // the others wait for the writer
    w.openAll();
    await first;
    await settle(1);
    expect(w.statements).toEqual([[1], [2, 3, 4, 5, 6, 7]]);
    w.openAll();
    expect(await Promise.all(waiting)).toEqual([[20, 30], [40], [50, 60, 70]]);
  });

  it("runs at most `concurrency` statements and keeps each within maxItems (a larger request goes alone)", async () => {
    const w = gatedWriter();
    const c = new Coalescer({ maxItems: 3, maxQueued: 1000, concurrency: 2, write: w.write });
    const all = [c.submit([1, 2]), c.submit([3, 4]), c.submit([5]), c.submit([6, 7, 8, 9]), c.submit([10])];
    await settle(1);
    expect(w.statements).toEqual([
      [1, 2],
      [3, 4, 5],
    ]);
    w.openAll();
    await settle(2);
    expect(w.statements.slice(2)).toEqual([[6, 7, 8, 9], [10]]);
    w.openAll();
    await Promise.all(all);
  });

  it("refuses, without queueing, a request that would pass maxQueued", async () => {
    const w = gatedWriter();
    const c = new Coalescer({ maxItems: 100, maxQueued: 3, concurrency: 1, write: w.write });
    const first = c.submit([1]);
    await settle(1); // being written: no longer counted as queued
    const queued = c.submit([2, 3]);
    await expect(c.submit([4, 5])).rejects.toBeInstanceOf(OverloadedError);
    expect(c.pending).toBe(2);
    w.openAll();
    await first;
    await settle(1);
    w.openAll();
    expect(await queued).toEqual([20, 30]);
  });

  it("fails every request of a failed statement, and carries on with the next", async () => {
    const w = gatedWriter();
    const c = new Coalescer({ maxItems: 100, maxQueued: 1000, concurrency: 1, write: w.write });
    const first = c.submit([1]);
    await settle(1);
    const a = c.submit([2]);
    const b = c.submit([3]);
    w.openAll();
    await first;
    await settle(1);
    w.failWith(new Error("database down"));
    w.openAll();
    await expect(a).rejects.toThrow("database down");
    await expect(b).rejects.toThrow("database down");
    const drained = c.drained();
    await expect(drained).resolves.toBeUndefined();
  });

  it("refuses a request that waited longer than maxWait for a writer, without writing it", async () => {
    const clock = new FakeClock();
    const w = gatedWriter();
    const maxWait = { ms: 1_000, clock, error: () => new UnavailableError("no writer in time") };
    const c = new Coalescer({ maxItems: 100, maxQueued: 1000, concurrency: 1, write: w.write, maxWait });
    const stuck = c.submit([1]); // its statement never answers
    await settle(1);
    await clock.advance(400);
    const early = c.submit([2]);
    await clock.advance(400);
    const late = c.submit([3]);
    early.catch(() => {});
    late.catch(() => {});
    await clock.advance(599); // [2] has waited 999 ms
    expect(c.pending).toBe(2);
    await clock.advance(1); // [2] has waited 1000 ms
    await expect(early).rejects.toBeInstanceOf(UnavailableError);
    expect(c.pending).toBe(1);
    await clock.advance(400); // [3] has waited 1000 ms
    await expect(late).rejects.toThrow("no writer in time");
    expect(c.pending).toBe(0);
    expect(w.statements).toEqual([[1]]); // neither was sent
    w.openAll();
    expect(await stuck).toEqual([10]);
    await expect(c.drained()).resolves.toBeUndefined();
  });

  it("never refuses a request a writer took in time, however long its statement then takes", async () => {
    const clock = new FakeClock();
    const w = gatedWriter();
    const maxWait = { ms: 1_000, clock, error: () => new UnavailableError("no writer in time") };
    const c = new Coalescer({ maxItems: 100, maxQueued: 1000, concurrency: 1, write: w.write, maxWait });
    const first = c.submit([1]);
    await settle(1);
    await clock.advance(5_000);
    w.openAll();
    expect(await first).toEqual([10]);
  });

  it("when the database refuses one request's row, fails that request alone and writes the others, in order", async () => {
    const statements: number[][] = [];
    const written: number[] = [];
    const write = async (items: number[]) => {
      statements.push(items);
      if (items.includes(13)) throw new RejectedWriteError("refused", String(13));
      written.push(...items);
      return items.map((i) => i * 10);
    };
    const c = new Coalescer({ maxItems: 1000, maxQueued: 1000, concurrency: 1, write });
    const hold = c.submit([0]); // takes the writer: the rest arrive while it is busy and share a statement
    const requests = Array.from({ length: 8 }, (_, r) => c.submit([10 + 2 * r, 11 + 2 * r]));
    const results = await Promise.allSettled([hold, ...requests]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected", ...Array(6).fill("fulfilled")]);
    expect((results[2] as PromiseRejectedResult).reason).toBeInstanceOf(RejectedWriteError);
    expect((results[3] as PromiseFulfilledResult<number[]>).value).toEqual([140, 150]);
    expect(written).toEqual([0, 10, 11, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25]);
    // 1 + the shared statement + its halves down to the culprit: 2·log2(8) more, not one per request.
    expect(statements.length).toBeLessThanOrEqual(2 + 2 * 3);
  });

  it("fails every request of a statement that failed for any other reason (the connection, not the data)", async () => {
    const w = gatedWriter();
    const c = new Coalescer({ maxItems: 100, maxQueued: 1000, concurrency: 1, write: w.write });
    const first = c.submit([1]);
    await settle(1);
    const all = Promise.allSettled([first, c.submit([2]), c.submit([3])]);
    w.failWith(new UnavailableError("gone"));
    w.openAll();
    await settle(3);
    w.openAll();
    const results = await all;
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected", "rejected"]);
    expect(w.statements).toEqual([[1], [2, 3]]);
  });
});
