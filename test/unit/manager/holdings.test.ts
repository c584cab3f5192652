import { describe, expect, it } from "vitest";
import { Holdings } from "../../../src/manager/holdings.js";
import { ReceiverSlot } from "../../../src/manager/receivers.js";

const slot = (maxInFlight = 10) => new ReceiverSlot({ maxInFlight, send: async () => {} });

function setup() {
  const woken: ReceiverSlot[] = [];
  return { holdings: new Holdings((s) => woken.push(s)), woken };
}

describe("Holdings", () => {
  it("counts what a receiver holds and gives the credit back on release", () => {
    const { holdings, woken } = setup();
    const a = slot();
    holdings.hold(a, ["1", "2", "3"]);
    holdings.hold(a, ["3"]); // sent again to the same receiver: still held once
    expect(a.held).toBe(3);
    expect(holdings.size).toBe(3);
    expect(holdings.holds(a, "2")).toBe(true);
    holdings.release(["2", "3", "9"]);
    expect(a.held).toBe(1);
    expect(holdings.holds(a, "2")).toBe(false);
    expect(holdings.size).toBe(1);
    expect(woken).toEqual([a]);
  });

  it("tracks every receiver a redelivered message went to, and releases them all", () => {
    const { holdings, woken } = setup();
    const [a, b, c] = [slot(), slot(), slot()];
    holdings.hold(a, ["1", "2"]);
    holdings.hold(b, ["1"]); // redelivered to b while a still holds it
    holdings.hold(c, ["1"]);
    holdings.hold(b, ["1"]);
    expect([a.held, b.held, c.held]).toEqual([2, 1, 1]);
    expect([holdings.holds(a, "1"), holdings.holds(b, "1"), holdings.holds(c, "1"), holdings.holds(b, "2")]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    expect(holdings.size).toBe(2);
    holdings.release(["1"]);
    expect([a.held, b.held, c.held]).toEqual([1, 0, 0]);
    expect(new Set(woken)).toEqual(new Set([a, b, c]));
    expect(holdings.size).toBe(1);
  });

  it("releases only one receiver's hold when asked, leaving the others", () => {
    const { holdings, woken } = setup();
    const [a, b] = [slot(), slot()];
    holdings.hold(a, ["1", "2"]);
    holdings.hold(b, ["1"]);
    holdings.release(["1", "2"], b);
    expect([a.held, b.held]).toEqual([2, 0]);
    expect([holdings.holds(a, "1"), holdings.holds(b, "1")]).toEqual([true, false]);
    expect(woken).toEqual([b]);
    holdings.release(["2"], b); // b does not hold 2: nothing changes
    expect(a.held).toBe(2);
    expect(holdings.size).toBe(2);
  });

  it("forgets a receiver that went away, and does not wake removed receivers", () => {
    const { holdings, woken } = setup();
    const [a, b] = [slot(), slot()];
    holdings.hold(a, ["1", "2"]);
    holdings.hold(b, ["2", "3"]);
    holdings.forgetReceiver(a);
    expect(a.held).toBe(0);
    expect([holdings.holds(a, "1"), holdings.holds(a, "2"), holdings.holds(b, "2")]).toEqual([false, false, true]);
    expect(holdings.size).toBe(2); // 2 and 3, both b's
    b.remove();
    holdings.release(["2", "3"]);
    expect(b.held).toBe(0);
    expect(woken).toEqual([]);
    expect(holdings.size).toBe(0);
  });

  it("tracks nothing for receivers without a maxInFlight; clear resets every count", () => {
    const { holdings } = setup();
    const [free, a, b] = [slot(0), slot(), slot()];
    holdings.hold(free, ["1"]);
    expect(holdings.size).toBe(0);
    holdings.hold(a, ["1", "2"]);
    holdings.hold(b, ["2"]);
    holdings.clear();
    expect([a.held, b.held, holdings.size]).toEqual([0, 0, 0]);
  });
});
