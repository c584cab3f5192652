/** `tablemq peek <table> [id]`: a table's unacked messages, read without delivering them (nothing changes). */
import { Option, type Command } from "commander";
import type { BrowsedMessage } from "../client/types.js";
import { wholeNumber } from "./flags.js";
import { type CliIo, clientFor } from "./io.js";
import { printPages } from "./pages.js";
import { type Column, formatTime, outputFormat, Printer } from "./output.js";

const COLUMNS: ReadonlyArray<Column<BrowsedMessage>> = [
  ["ID", (m) => m.id],
  ["STATE", (m) => m.state],
  ["PRIORITY", (m) => m.priority],
  ["EPOCH", (m) => m.epoch],
  ["DUE_AT", (m) => formatTime(m.dueAt)],
  ["PAYLOAD", (m) => JSON.stringify(m.payload)],
];

interface PeekFlags {
  state?: "ready" | "delayed" | "inFlight";
  order: "next" | "newest";
  limit: number;
  cursor?: string;
  all?: boolean;
}

export function registerPeek(program: Command, io: CliIo): void {
  program
    .command("peek")
    .description("show unacked messages without delivering them: next due first (or newest), or one by id")
    .argument("<table>", "table name")
    .argument("[id]", "one message")
    .addOption(new Option("--state <state>", "only ready, delayed or inFlight messages").choices(["ready", "delayed", "inFlight"]))
    .addOption(new Option("--order <order>", "next (due first) or newest").choices(["next", "newest"]).default("next"))
    .option("--limit <n>", "messages per page (1..1000)", wholeNumber(1, 1000), 20)
    .option("--cursor <cursor>", "continue after an earlier page (printed on stderr when there is more)")
    .option("--all", "follow every page to the end")
    .action(async (table: string, id: string | undefined, flags: PeekFlags, cmd: Command) => {
      const client = clientFor(cmd, io);
      const out = new Printer(io, outputFormat(cmd, io));
      if (id !== undefined) {
        out.one(
          await client.getMessage(table, id),
          COLUMNS.map(([h, cell]) => [h.toLowerCase().replace("_", " "), cell] as const),
        );
        return;
      }
      await printPages(out, COLUMNS, flags, async (cursor) => {
        const page = await client.browse(table, {
          order: flags.order,
          limit: flags.limit,
          ...(flags.state ? { state: flags.state } : {}),
          ...(cursor ? { cursor } : {}),
        });
        return { items: page.messages, next: page.next };
      });
    });
}
