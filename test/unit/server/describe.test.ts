import { describe, expect, it } from "vitest";
import { TableNotFoundError } from "../../../src/errors.js";
import { DESCRIBE_CHUNK, describeTables } from "../../../src/server/describe.js";
import { DEFAULT_OPTIONS } from "../../../src/options.js";

/** An engine whose describeTables records each call, and fails once for each name in `gone`. */
function fakeEngine(gone: Set<string>) {
  const calls: string[][] = [];
  const engine = {
    async describeTables(names: readonly string[]) {
      calls.push([...names]);
      const missing = names.find((n) => gone.has(n));
      if (missing !== undefined) throw new TableNotFoundError(missing);
      const stats = { ready: 0, delayed: 0, inFlight: 0, acked: 0, dead: 0, receivers: 0, cached: 0 };
      return names.map((name) => ({ name, options: { ...DEFAULT_OPTIONS }, stats }));
    },
  };
  const webhooks = { summaries: () => [] };
  return { calls, ctx: { engine, webhooks } as never };
}

describe("describeTables", () => {
  it("asks the engine once per DESCRIBE_CHUNK tables, in order", async () => {
    const names = Array.from({ length: 2 * DESCRIBE_CHUNK + 5 }, (_, i) => `t${String(i).padStart(4, "0")}`);
    const { calls, ctx } = fakeEngine(new Set());
    const described = await describeTables(ctx, names);
    expect(described.map((d) => d.name)).toEqual(names);
    expect(calls.map((c) => c.length)).toEqual([DESCRIBE_CHUNK, DESCRIBE_CHUNK, 5]);
  });

  it("leaves out a table dropped meanwhile and describes the rest of its chunk", async () => {
    const { calls, ctx } = fakeEngine(new Set(["b"]));
    expect((await describeTables(ctx, ["a", "b", "c"])).map((d) => d.name)).toEqual(["a", "c"]);
    expect(calls).toEqual([
      ["a", "b", "c"],
      ["a", "c"],
    ]);
  });
});
