/** `tablemq dlq list|redrive`: a table's dead letters (messages out of attempts). */
import type { Command } from "commander";
import { wholeNumber } from "./flags.js";
import type { DeadMessage } from "../client/types.js";
import { CliError, type CliIo, clientFor } from "./io.js";
import { printPages } from "./pages.js";
import { type Column, formatTime, outputFormat, Printer } from "./output.js";

const DEAD_COLUMNS: ReadonlyArray<Column<DeadMessage>> = [
  ["ID", (m) => m.id],
  ["EPOCH", (m) => m.epoch],
  ["DEAD_AT", (m) => formatTime(m.deadAt)],
  ["REASON", (m) => m.reason],
  ["PAYLOAD", (m) => JSON.stringify(m.payload)],
];

export function registerDlq(program: Command, io: CliIo): void {
  const dlq = program.command("dlq").description("list and redrive a table's dead letters");

  dlq
    .command("list")
    .description("print dead letters, newest first")
    .argument("<table>", "table name")
    .option("--limit <n>", "dead letters per page (1..1000)", wholeNumber(1, 1000), 100)
    .option("--cursor <cursor>", "continue after an earlier page (printed on stderr when there is more)")
    .option("--all", "follow every page to the end")
    .action(async (table: string, flags: { limit: number; cursor?: string; all?: boolean }, cmd: Command) => {
      const client = clientFor(cmd, io);
      await printPages(new Printer(io, outputFormat(cmd, io)), DEAD_COLUMNS, flags, async (cursor) => {
        const page = await client.listDead(table, cursor === undefined ? { limit: flags.limit } : { limit: flags.limit, cursor });
        return { items: page.messages, next: page.next };
      });
    });

  dlq
    .command("redrive")
    .description("move dead letters back into the table, due now with epoch 0")
    .argument("<table>", "table name")
    .argument("[ids...]", "dead letter ids")
    .option("--all", "every dead letter of the table")
    .action(async (table: string, ids: string[], flags: { all?: boolean }, cmd: Command) => {
      if (ids.length > 0 === (flags.all === true)) throw new CliError("give either ids or --all", 2);
      const result = await clientFor(cmd, io).redrive(table, flags.all ? { all: true } : { ids });
      new Printer(io, outputFormat(cmd, io)).one(result);
      const left = [
        ...(result.missing.length > 0 ? [`not dead letters of ${table}: ${result.missing.join(", ")}`] : []),
        ...(result.conflicts.length > 0 ? [`in use in ${table} again, left dead: ${result.conflicts.join(", ")}`] : []),
      ];
      if (left.length > 0) throw new CliError(`${result.redriven} redriven; ${left.join("; ")}`, 1);
    });
}
