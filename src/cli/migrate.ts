/** `tablemq migrate --from <url> --to <url>`: copies the queues of one database to another (store/migrate.ts). */
import type { Command } from "commander";
import { redactUrl } from "../server/config.js";
import { DATABASE_URL, sqlitePath } from "../store/urls.js";
import { CliError, type CliIo } from "./io.js";

interface MigrateFlags {
  from: string;
  to: string;
}

export function registerMigrate(program: Command, io: CliIo): void {
  program
    .command("migrate")
    .description("copy every table, its unacked messages and dead letters, and the webhooks, from one database to another")
    .requiredOption("--from <url>", "the database to copy from, e.g. sqlite:./data/tablemq.db (its servers stopped)")
    .requiredOption("--to <url>", "the database to copy to, e.g. mysql://user:pass@host:3306/db")
    .addHelpText(
      "after",
      "\nThe source is only read. A table or message the target has already is left as it is there, so running it" +
        "\nagain finishes a migration cut short. Prints one JSON line per table, then a summary.",
    )
    .action(async (flags: MigrateFlags) => {
      for (const [name, url] of [
        ["--from", flags.from],
        ["--to", flags.to],
      ] as const) {
        if (!DATABASE_URL.test(url))
          throw new CliError(`${name} must start with mysql:// or sqlite:, got ${JSON.stringify(redactUrl(url))}`);
      }
      if (flags.from === flags.to || (sqlitePath(flags.from) !== undefined && sqlitePath(flags.from) === sqlitePath(flags.to))) {
        throw new CliError("--from and --to name the same database");
      }
      // Loaded here, not at the top: the other commands need neither store (nor SQLite's native module).
      const { migrate } = await import("../store/migrate.js");
      const from = await open(flags.from, "--from");
      try {
        const to = await open(flags.to, "--to");
        try {
          const report = await migrate(from, to, {
            nowMs: () => Date.now(),
            onTable: (t) => io.stdout.write(`${JSON.stringify(t)}\n`),
          });
          const sum = (k: "messages" | "deadLetters" | "existing") => report.tables.reduce((n, t) => n + t[k], 0);
          const summary = {
            tables: report.tables.length,
            messages: sum("messages"),
            deadLetters: sum("deadLetters"),
            existing: sum("existing"),
            webhooks: report.webhooks,
          };
          io.stdout.write(`${JSON.stringify({ migrated: summary })}\n`);
        } finally {
          await to.close();
        }
      } finally {
        await from.close();
      }
    });
}

async function open(url: string, flag: string) {
  const { openStore } = await import("../store/open.js");
  try {
    return (await openStore(url, { mysql: { connectionLimit: 2 }, sqliteThread: "main" })).store;
  } catch (err) {
    throw new CliError(`${flag} ${redactUrl(url)}: ${(err as Error).message}`, 1);
  }
}
