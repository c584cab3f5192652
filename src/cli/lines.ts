/** Reading payloads for `tablemq send`: one JSON value per argument or per stdin line. */
import { createInterface } from "node:readline";
import { CliError } from "./io.js";

export const DEFAULT_SEND_BATCH = 500;

/** Parses one stdin line: undefined for a blank line (skipped), else its JSON value. */
export function parsePayloadLine(text: string, lineNumber: number): { payload: unknown } | undefined {
  const trimmed = (lineNumber === 1 ? text.replace(/^\uFEFF/, "") : text).trim();
  if (trimmed === "") return undefined;
  try {
    return { payload: JSON.parse(trimmed) };
  } catch (err) {
    throw new CliError(`line ${lineNumber} is not JSON (${(err as Error).message}): ${preview(trimmed)}`);
  }
}

/** Parses the payload arguments; nothing is sent when one is not JSON. */
export function parsePayloadArgs(args: readonly string[]): unknown[] {
  return args.map((arg, i) => {
    try {
      return JSON.parse(arg);
    } catch (err) {
      throw new CliError(`argument ${i + 1} is not JSON (${(err as Error).message}): ${preview(arg)}`);
    }
  });
}

/**
 * Groups stdin lines into batches of up to `size` payloads, blank lines skipped. A line that is not JSON
 * throws before its batch is yielded, so nothing of that batch is sent (earlier batches were).
 */
export async function* payloadBatches(lines: AsyncIterable<string>, size = DEFAULT_SEND_BATCH): AsyncGenerator<unknown[]> {
  let batch: unknown[] = [];
  let lineNumber = 0;
  for await (const line of lines) {
    lineNumber++;
    const parsed = parsePayloadLine(line, lineNumber);
    if (!parsed) continue;
    batch.push(parsed.payload);
    if (batch.length >= size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

/** The lines of a stream (\n or \r\n), without their line ends. */
export function readLines(input: NodeJS.ReadableStream): AsyncIterable<string> {
  return createInterface({ input, crlfDelay: Infinity, terminal: false });
}

function preview(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}...` : text);
}
