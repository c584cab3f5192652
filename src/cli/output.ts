/**
 * The CLI's one output switch, `-o, --output table|json|jsonl`, with the same meaning on every command:
 * - `table`: aligned columns for people, times as UTC dates with their age, durations as `30s`, `2m`;
 * - `json`: pretty JSON: one document, or an array for commands that print several records (written as
 *   they come, so `tail -o json` is valid JSON once it ends);
 * - `jsonl`: compact JSON, one line per record (or per document).
 * The default is `table` when stdout is a terminal, `jsonl` otherwise (pipes and files get JSON lines).
 */
import { Option } from "commander";
import type { Command } from "commander";
import type { CliIo } from "./io.js";

export const OUTPUT_FORMATS = ["table", "json", "jsonl"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** A table column: its header and how a record shows in it. */
export type Column<T> = readonly [header: string, cell: (record: T) => string | number | boolean | null | undefined];

export function outputOption(): Option {
  return new Option("-o, --output <format>", "table (default on a terminal), json or jsonl (default otherwise)").choices(OUTPUT_FORMATS);
}

export function outputFormat(cmd: Command, io: CliIo): OutputFormat {
  const opts = cmd.optsWithGlobals() as { output?: OutputFormat; json?: boolean };
  if (opts.output !== undefined) return opts.output;
  if (opts.json) return "jsonl"; // --json: the flag of earlier versions, compact JSON
  return (io.stdout as { isTTY?: boolean }).isTTY ? "table" : "jsonl";
}

/** Writes a command's result in the chosen format. */
export class Printer {
  constructor(
    private readonly io: CliIo,
    readonly format: OutputFormat,
  ) {}

  /** One document; in `table`, as `field  value` rows (or `rows` when given). */
  one<T extends object>(value: T, rows?: ReadonlyArray<Column<T>>): void {
    if (this.format === "table") this.write(fieldRows(value, rows));
    else this.write(this.format === "json" ? JSON.stringify(value, null, 2) + "\n" : JSON.stringify(value) + "\n");
  }

  /** Several records at once. */
  many<T>(records: readonly T[], columns: ReadonlyArray<Column<T>>): void {
    if (this.format === "table") this.write(formatTable(columns, records));
    else if (this.format === "json") this.write(JSON.stringify(records, null, 2) + "\n");
    else this.write(records.map((r) => JSON.stringify(r) + "\n").join(""));
  }

  /** Records as they come (tail, paged lists): `end()` closes a `json` array. */
  stream<T>(columns: ReadonlyArray<Column<T>>): { add(record: T): void; end(): void } {
    let count = 0;
    const widths = columns.map(([h]) => h.length);
    return {
      add: (record) => {
        if (this.format === "jsonl") this.write(JSON.stringify(record) + "\n");
        else if (this.format === "json") this.write((count === 0 ? "[\n" : ",\n") + indent(JSON.stringify(record, null, 2)));
        else {
          // Column widths grow as records come: a stream cannot be measured first.
          const cells = columns.map(([, cell]) => show(cell(record)));
          if (count === 0)
            this.write(
              row(
                columns.map(([h]) => h),
                widths.map((w, i) => Math.max(w, cells[i]!.length)),
              ),
            );
          cells.forEach((c, i) => (widths[i] = Math.max(widths[i]!, c.length)));
          this.write(row(cells, widths));
        }
        count++;
      },
      end: () => {
        if (this.format === "json") this.write(count === 0 ? "[]\n" : "\n]\n");
        else if (this.format === "table" && count === 0) this.write("(none)\n");
      },
    };
  }

  /** A line for people: on stderr, so stdout stays the result. */
  note(text: string): void {
    this.io.stderr.write(text + "\n");
  }

  private write(text: string): void {
    this.io.stdout.write(text);
  }
}

/** Rows of `field  value` for one document: the given rows, or every field (nested objects flattened a.b). */
function fieldRows<T extends object>(value: T, rows: ReadonlyArray<Column<T>> | undefined): string {
  const pairs: Array<[string, string]> = rows
    ? rows.map(([name, cell]) => [name, show(cell(value))])
    : flatten(value as Record<string, unknown>).map(([k, v]) => [k, show(v as never)]);
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${k.padEnd(width)}  ${v}`.trimEnd() + "\n").join("");
}

function flatten(value: Record<string, unknown>, prefix = ""): Array<[string, unknown]> {
  return Object.entries(value).flatMap(
    ([k, v]): Array<[string, unknown]> =>
      v !== null && typeof v === "object" && !Array.isArray(v)
        ? flatten(v as Record<string, unknown>, `${prefix}${k}.`)
        : [[prefix + k, v]],
  );
}

/** Aligned columns: the first left-aligned, numbers right-aligned; "(none)" for no records. */
export function formatTable<T>(columns: ReadonlyArray<Column<T>>, records: readonly T[]): string {
  if (records.length === 0) return "(none)\n";
  const cells = records.map((r) => columns.map(([, cell]) => cell(r)));
  const text = cells.map((r) => r.map(show));
  const headers = columns.map(([h]) => h);
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((r) => r[i]!.length)));
  const numeric = columns.map((_, i) => cells.every((r) => typeof r[i] === "number"));
  return [row(headers, widths, numeric), ...text.map((r) => row(r, widths, numeric))].join("");
}

function row(cells: readonly string[], widths: readonly number[], numeric: readonly boolean[] = []): string {
  return (
    cells
      .map((c, i) => (i === cells.length - 1 && !numeric[i] ? c : numeric[i] && i > 0 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd() + "\n"
  );
}

function show(v: string | number | boolean | null | undefined | object): string {
  if (v === null || v === undefined) return "-";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");
}

/** `2026-12-07 08:41:02Z (3m ago)`: a time for people, UTC, with its age (or how far ahead it is). */
export function formatTime(epochMs: number | null | undefined, nowMs = Date.now()): string {
  if (epochMs === null || epochMs === undefined) return "-";
  const stamp = formatStamp(epochMs);
  const delta = nowMs - epochMs;
  if (Math.abs(delta) < 1000) return `${stamp} (now)`;
  return `${stamp} (${delta > 0 ? `${formatDuration(delta)} ago` : `in ${formatDuration(-delta)}`})`;
}

/** `2026-12-07 08:41:02Z`: a UTC time to the second. */
export function formatStamp(epochMs: number): string {
  return new Date(epochMs)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d{3}Z$/, "Z");
}

/** `250ms`, `30s`, `1m30s`, `2h5m`, `3d4h`: the two largest units. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const units: Array<[string, number]> = [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1000],
  ];
  const parts: string[] = [];
  let rest = Math.floor(ms / 1000) * 1000;
  for (const [name, size] of units) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${name}`);
      rest %= size;
    }
    if (parts.length === 2) break;
    if (parts.length === 1 && rest === 0) break;
  }
  return parts.join("");
}
