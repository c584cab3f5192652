/** `tablemq dlq list|redrive`: a table's dead letters (messages out of attempts). */
import type { Command } from "commander";
import { wholeNumber } from "./flags.js";
import { CliError, type CliIo, clientFor, writeJson } from "./io.js";

export function registerDlq(program: Command, io: CliIo): void {
  const dlq = program.command("dlq").description("list and redrive a table's dead letters");

  dlq
    .command("list")
    .description("print dead letters, newest first, one JSON object per line")
    .argument("<table>", "table name")
    .option("--limit <n>", "dead letters per page (1..1000)", wholeNumber(1, 1000), 100)
    .option("--cursor <cursor>", "continue after an earlier page (printed on stderr when there is more)")
    .option("--all", "follow every page to the end")
    .action(async (table: string, flags: { limit: number; cursor?: string; all?: boolean }, cmd: Command) => {
      const client = clientFor(cmd, io);
      let cursor = flags.cursor;
      for (;;) {
        const page = await client.listDead(table, cursor === undefined ? { limit: flags.limit } : { limit: flags.limit, cursor });
        for (const message of page.messages) writeJson(io.stdout, message, true);
        if (page.next === undefined) return;
        if (!flags.all) {
          io.stderr.write(`more: --cursor ${page.next}\n`);
          return;
        }
        cursor = page.next;
      }
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
      writeJson(io.stdout, result, true);
    });
}
