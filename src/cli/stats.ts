/** `tablemq stats [table]`: the stats of one or all tables, as a text table or JSON. */
import type { Command } from "commander";
import type { TableDescription } from "../client/types.js";
import { type CliIo, clientFor, writeJson } from "./io.js";

const COLUMNS: ReadonlyArray<[string, (d: TableDescription) => string | number]> = [
  ["TABLE", (d) => d.name],
  ["READY", (d) => d.stats.ready],
  ["DELAYED", (d) => d.stats.delayed],
  ["IN_FLIGHT", (d) => d.stats.inFlight],
  ["ACKED", (d) => d.stats.acked],
  ["DEAD", (d) => d.stats.dead],
  ["RECEIVERS", (d) => d.stats.receivers],
  ["CACHED", (d) => d.stats.cached],
];

export function registerStats(program: Command, io: CliIo): void {
  program
    .command("stats")
    .description("message counts of one table or of all tables")
    .argument("[table]", "one table (default: all)")
    .option("--json", "JSON (the table descriptions) instead of a text table")
    .action(async (name: string | undefined, flags: { json?: boolean }, cmd: Command) => {
      const client = clientFor(cmd, io);
      const tables = name === undefined ? await client.listTables() : [await client.describeTable(name)];
      if (flags.json) writeJson(io.stdout, name === undefined ? tables : tables[0], true);
      else io.stdout.write(formatStatsTable(tables));
    });
}

/** A left-aligned name column and right-aligned counts; "(no tables)" for none. */
export function formatStatsTable(tables: readonly TableDescription[]): string {
  if (tables.length === 0) return "(no tables)\n";
  const rows = [COLUMNS.map(([h]) => h), ...tables.map((t) => COLUMNS.map(([, get]) => String(get(t))))];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map(
      (r) =>
        r
          .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
          .join("  ")
          .trimEnd() + "\n",
    )
    .join("");
}
