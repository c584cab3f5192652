/** `tablemq stats [table] [--watch [ms]]`: the message counts of one table or of all tables. */
import type { Command } from "commander";
import { wholeNumber } from "./flags.js";
import { type CliIo, clientFor } from "./io.js";
import { formatStamp, outputFormat, Printer } from "./output.js";
import { TABLE_COLUMNS } from "./table.js";

interface StatsFlags {
  watch?: number | true;
  count?: number;
}

const DEFAULT_WATCH_MS = 2_000;

export function registerStats(program: Command, io: CliIo): void {
  program
    .command("stats")
    .description("message counts of one table or of all tables")
    .argument("[table]", "one table (default: all)")
    .option("--watch [ms]", `print again every ms milliseconds (default ${DEFAULT_WATCH_MS}) until interrupted`, wholeNumber(100))
    .option("--count <n>", "with --watch: stop after this many prints", wholeNumber(1))
    .action(async (name: string | undefined, flags: StatsFlags, cmd: Command) => {
      const client = clientFor(cmd, io);
      const out = new Printer(io, outputFormat(cmd, io));
      const print = async () => {
        const tables = name === undefined ? await client.listTables() : [await client.describeTable(name)];
        if (out.format === "table" || name === undefined) out.many(tables, TABLE_COLUMNS);
        else out.one(tables[0]!);
      };
      if (flags.watch === undefined) return print();
      const everyMs = flags.watch === true ? DEFAULT_WATCH_MS : flags.watch;
      const tty = (io.stdout as { isTTY?: boolean }).isTTY === true;
      const stopped = new AbortController();
      const stop = () => stopped.abort();
      if (io.handleSignals) process.once("SIGINT", stop).once("SIGTERM", stop);
      try {
        for (let n = 1; ; n++) {
          if (out.format === "table") {
            // On a terminal each print replaces the last; elsewhere they follow each other, each with its time.
            io.stdout.write(`${tty ? "\x1b[2J\x1b[H" : n > 1 ? "\n" : ""}every ${everyMs} ms, ${formatStamp(Date.now())}\n`);
          }
          await print();
          if (n === flags.count || stopped.signal.aborted) return;
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, everyMs);
            stopped.signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
          });
          if (stopped.signal.aborted) return;
        }
      } finally {
        process.off("SIGINT", stop).off("SIGTERM", stop);
      }
    });
}
