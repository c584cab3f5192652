import { describe, expect, it } from "vitest";
import { Leases } from "../../../src/manager/leases.js";
import { ReceiverSlot } from "../../../src/manager/receivers.js";

const slot = (maxInFlight = 10) => new ReceiverSlot({ maxInFlight, send: async () => {} });

function setup() {
  const woken: ReceiverSlot[] = [];
  return { leases: new Leases((s) => woken.push(s)), woken };
}

describe("Leases", () => {
  it("counts what a receiver holds and gives the credit back on release", () => {
    const { leases, woken } = setup();
    const a = slot();
    leases.grant(a, ["1", "2", "3"]);
    leases.grant(a, ["3"]); // sent again to the same receiver: still one lease
    expect(a.held).toBe(3);
    expect(leases.size).toBe(3);
    expect(leases.holds(a, "2")).toBe(true);
    leases.release(["2", "3", "9"]);
    expect(a.held).toBe(1);
    expect(leases.holds(a, "2")).toBe(false);
    expect(leases.size).toBe(1);
    expect(woken).toEqual([a]);
  });

  it("tracks every receiver a redelivered message went to, and releases them all", () => {
    const { leases, woken } = setup();
    const [a, b, c] = [slot(), slot(), slot()];
    leases.grant(a, ["1", "2"]);
    leases.grant(b, ["1"]); // redelivered to b while a still holds it
    leases.grant(c, ["1"]);
    leases.grant(b, ["1"]);
    expect([a.held, b.held, c.held]).toEqual([2, 1, 1]);
    expect([leases.holds(a, "1"), leases.holds(b, "1"), leases.holds(c, "1"), leases.holds(b, "2")]).toEqual([true, true, true, false]);
    expect(leases.size).toBe(2);
    leases.release(["1"]);
    expect([a.held, b.held, c.held]).toEqual([1, 0, 0]);
    expect(new Set(woken)).toEqual(new Set([a, b, c]));
    expect(leases.size).toBe(1);
  });

  it("releases only one receiver's lease when asked, leaving the others", () => {
    const { leases, woken } = setup();
    const [a, b] = [slot(), slot()];
    leases.grant(a, ["1", "2"]);
    leases.grant(b, ["1"]);
    leases.release(["1", "2"], b);
    expect([a.held, b.held]).toEqual([2, 0]);
    expect([leases.holds(a, "1"), leases.holds(b, "1")]).toEqual([true, false]);
    expect(woken).toEqual([b]);
    leases.release(["2"], b); // b does not hold 2: nothing changes
    expect(a.held).toBe(2);
    expect(leases.size).toBe(2);
  });

  it("forgets a receiver that went away, and does not wake removed receivers", () => {
    const { leases, woken } = setup();
    const [a, b] = [slot(), slot()];
    leases.grant(a, ["1", "2"]);
    leases.grant(b, ["2", "3"]);
    leases.dropSlot(a);
    expect(a.held).toBe(0);
    expect([leases.holds(a, "1"), leases.holds(a, "2"), leases.holds(b, "2")]).toEqual([false, false, true]);
    expect(leases.size).toBe(2); // 2 and 3, both b's
    b.remove();
    leases.release(["2", "3"]);
    expect(b.held).toBe(0);
    expect(woken).toEqual([]);
    expect(leases.size).toBe(0);
  });

  it("tracks nothing for receivers without a maxInFlight; clear resets every count", () => {
    const { leases } = setup();
    const [free, a, b] = [slot(0), slot(), slot()];
    leases.grant(free, ["1"]);
    expect(leases.size).toBe(0);
    leases.grant(a, ["1", "2"]);
    leases.grant(b, ["2"]);
    leases.clear();
    expect([a.held, b.held, leases.size]).toEqual([0, 0, 0]);
  });
});
