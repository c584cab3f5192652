import { describe, expect, it } from "vitest";
import { depthOver, MAX_PAYLOAD_DEPTH } from "../../../src/server/routes/messages.js";

const arrays = (depth: number): unknown => JSON.parse("[".repeat(depth) + "1" + "]".repeat(depth));
const objects = (depth: number): unknown => JSON.parse('{"a":'.repeat(depth) + "1" + "}".repeat(depth));

describe("depthOver (the payload nesting limit MariaDB's JSON_VALID sets)", () => {
  it("allows exactly the limit and refuses one level more, for arrays, objects and mixtures", () => {
    for (const make of [arrays, objects]) {
      expect(depthOver(make(MAX_PAYLOAD_DEPTH), MAX_PAYLOAD_DEPTH)).toBe(false);
      expect(depthOver(make(MAX_PAYLOAD_DEPTH + 1), MAX_PAYLOAD_DEPTH)).toBe(true);
    }
    // The deep branch is the last child, after shallow siblings; the two wrappers count as two levels.
    expect(depthOver({ a: 1, b: [1, 2], c: { d: arrays(MAX_PAYLOAD_DEPTH - 2) } }, MAX_PAYLOAD_DEPTH)).toBe(false);
    expect(depthOver({ a: 1, b: [1, 2], c: { d: arrays(MAX_PAYLOAD_DEPTH - 1) } }, MAX_PAYLOAD_DEPTH)).toBe(true);
    expect(depthOver([1, "x", null, [objects(MAX_PAYLOAD_DEPTH)]], MAX_PAYLOAD_DEPTH)).toBe(true);
  });

  it("counts scalars as no depth", () => {
    for (const v of [1, "s", null, true]) expect(depthOver(v, 0)).toBe(false);
    expect(depthOver([], 0)).toBe(true);
    expect(depthOver({}, 1)).toBe(false);
  });

  it("stops at the limit: a value nested 100,000 deep does not overflow the stack", () => {
    expect(depthOver(arrays(100_000), MAX_PAYLOAD_DEPTH)).toBe(true);
    expect(depthOver(objects(100_000), MAX_PAYLOAD_DEPTH)).toBe(true);
  });
});
