import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import { PING_TICK_MS, PingRing } from "../../../src/server/pings.js";
import { FakeClock } from "../../support/fake-clock.js";

/** A socket that records its pings, answers them when `answers`, and can be terminated. */
class FakeSocket extends EventEmitter {
  readyState = 1;
  pings: number[] = [];
  terminated = false;
  answers = true;
  constructor(private readonly clock: FakeClock) {
    super();
  }
  ping(): void {
    this.pings.push(this.clock.now());
    if (this.answers) queueMicrotask(() => this.emit("pong"));
  }
  terminate(): void {
    this.terminated = true;
    this.readyState = 3;
    this.emit("close");
  }
}

describe("PingRing", () => {
  it("pings each socket once an interval, a slot of them each tick, not all at once", async () => {
    const clock = new FakeClock();
    const ring = new PingRing(clock, 30_000);
    const sockets = Array.from({ length: 300 }, () => new FakeSocket(clock));
    for (const s of sockets) ring.add(s);
    const t0 = clock.now();
    const perTick = new Map<number, number>();
    for (let i = 0; i < 30; i++) {
      await clock.advance(PING_TICK_MS);
      perTick.set(i, sockets.filter((s) => s.pings.length === 1 && s.pings[0] === clock.now()).length);
    }
    expect(sockets.every((s) => s.pings.length === 1)).toBe(true); // each once in the first interval
    expect(Math.max(...perTick.values())).toBe(10); // 300 sockets over 30 ticks
    await clock.advance(30_000);
    expect(sockets.every((s) => s.pings.length === 2 && s.pings[1]! - s.pings[0]! === 30_000)).toBe(true);
    expect(sockets.some((s) => s.terminated)).toBe(false);
    expect(clock.now() - t0).toBe(60_000);
    ring.stop();
  });

  it("terminates a socket that did not answer its previous ping, and forgets closed ones", async () => {
    const clock = new FakeClock();
    const ring = new PingRing(clock, 3_000);
    const [quiet, fine, gone] = [new FakeSocket(clock), new FakeSocket(clock), new FakeSocket(clock)];
    quiet.answers = false;
    for (const s of [quiet, fine, gone]) ring.add(s);
    gone.emit("close");
    expect(ring.size).toBe(2);
    await clock.advance(3_000);
    expect(quiet.pings).toHaveLength(1);
    expect(quiet.terminated).toBe(false);
    await clock.advance(3_000);
    expect(quiet.terminated).toBe(true);
    expect(fine.terminated).toBe(false);
    expect(gone.pings).toHaveLength(0);
    expect(ring.size).toBe(1);
    ring.stop();
  });
});
