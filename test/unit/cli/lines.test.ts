import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { parsePayloadArgs, parsePayloadLine, payloadBatches, readLines } from "../../../src/cli/lines.js";

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function* from(lines: string[]): AsyncGenerator<string> {
  yield* lines;
}

describe("parsePayloadLine", () => {
  it("parses any JSON value and skips blank lines", () => {
    expect(parsePayloadLine('{"a":1}', 1)).toEqual({ payload: { a: 1 } });
    expect(parsePayloadLine("  42 ", 2)).toEqual({ payload: 42 });
    expect(parsePayloadLine("null", 3)).toEqual({ payload: null });
    expect(parsePayloadLine("   ", 4)).toBeUndefined();
    expect(parsePayloadLine("\uFEFF[1]", 1)).toEqual({ payload: [1] });
  });

  it("names the line number of a line that is not JSON", () => {
    expect(() => parsePayloadLine("{oops", 7)).toThrow(/^line 7 is not JSON/);
  });
});

describe("parsePayloadArgs", () => {
  it("parses each argument, naming the first bad one", () => {
    expect(parsePayloadArgs(['{"a":1}', '"s"', "3"])).toEqual([{ a: 1 }, "s", 3]);
    expect(() => parsePayloadArgs(["1", "two"])).toThrow(/^argument 2 is not JSON/);
  });
});

describe("payloadBatches", () => {
  it("groups payloads into batches of the given size, blank lines skipped", async () => {
    const lines = ["1", "", "2", "3", "  ", "4", "5"];
    expect(await collect(payloadBatches(from(lines), 2))).toEqual([[1, 2], [3, 4], [5]]);
  });

  it("yields nothing for empty input", async () => {
    expect(await collect(payloadBatches(from(["", ""]), 2))).toEqual([]);
  });

  it("yields the batches before a bad line and none of the bad line's batch", async () => {
    const seen: unknown[][] = [];
    const run = async () => {
      for await (const b of payloadBatches(from(["1", "2", "3", "x", "5"]), 2)) seen.push(b);
    };
    await expect(run()).rejects.toThrow(/^line 4 is not JSON/);
    expect(seen).toEqual([[1, 2]]);
  });

  it("counts blank lines in line numbers", async () => {
    await expect(collect(payloadBatches(from(["1", "", "bad"]), 10))).rejects.toThrow(/^line 3 /);
  });

  it("reads \\n and \\r\\n lines from a stream, with or without a final newline", async () => {
    const stream = Readable.from(['{"a":1}\r\n{"b":', "2}\n\n", "3"]);
    expect(await collect(payloadBatches(readLines(stream), 500))).toEqual([[{ a: 1 }, { b: 2 }, 3]]);
  });
});
