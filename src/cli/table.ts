/** `tablemq table create|alter|list|describe|pause|resume|purge|drop`. */
import type { Command } from "commander";
import type { TableDescription } from "../client/types.js";
import { TABLE_NAME_PATTERN } from "../model/limits.js";
import { tableOptionFlags, tableOptionsFromFlags, wholeNumber } from "./flags.js";
import { CliError, type CliIo, clientFor } from "./io.js";
import { printPages } from "./pages.js";
import { type Column, formatDuration, outputFormat, Printer } from "./output.js";

/** One table's description as `field  value` rows. */
const DESCRIPTION_ROWS: ReadonlyArray<Column<TableDescription>> = [
  ["name", (d) => d.name],
  ["delivery", (d) => (d.options.paused ? "paused" : "on")],
  ["ready", (d) => d.stats.ready],
  ["delayed", (d) => d.stats.delayed],
  ["in flight", (d) => d.stats.inFlight],
  ["acked", (d) => d.stats.acked],
  ["dead", (d) => d.stats.dead],
  ["receivers", (d) => d.stats.receivers],
  ["cached", (d) => d.stats.cached],
  ["ack wait", (d) => formatDuration(d.options.ackWaitMs)],
  [
    "backoff",
    (d) => `${formatDuration(d.options.minBackoffMs)} to ${d.options.maxBackoffMs === 0 ? "1d" : formatDuration(d.options.maxBackoffMs)}`,
  ],
  ["max attempts", (d) => (d.options.maxAttempts === 0 ? "unlimited" : d.options.maxAttempts)],
  ["purge after", (d) => formatDuration(d.options.purgeAfterMs)],
  ["poll interval", (d) => formatDuration(d.options.pollIntervalMs)],
  ["batch size", (d) => d.options.batchSize],
  ["cache size", (d) => d.options.cacheSize],
  ["webhooks", (d) => (d.webhooks ?? []).map((w) => `${w.name} (${w.state})`).join(", ") || "-"],
];

/** The tables as a list. */
export const TABLE_COLUMNS: ReadonlyArray<Column<TableDescription>> = [
  ["TABLE", (d) => d.name],
  ["READY", (d) => d.stats.ready],
  ["DELAYED", (d) => d.stats.delayed],
  ["IN_FLIGHT", (d) => d.stats.inFlight],
  ["ACKED", (d) => d.stats.acked],
  ["DEAD", (d) => d.stats.dead],
  ["RECEIVERS", (d) => d.stats.receivers],
  ["CACHED", (d) => d.stats.cached],
];

export function registerTable(program: Command, io: CliIo): void {
  const table = program.command("table").description("create, alter, list, describe and drop message tables");

  const create = table
    .command("create")
    .description("create a message table, or change the given options of an existing one")
    .argument("<name>", `table name: ${TABLE_NAME_PATTERN}`);
  for (const option of tableOptionFlags()) create.addOption(option);
  create.action(async (name: string, flags: Record<string, unknown>, cmd: Command) => {
    const out = new Printer(io, outputFormat(cmd, io));
    const { created, table: description } = await clientFor(cmd, io).createTable(name, tableOptionsFromFlags(flags));
    out.note(created ? `created table ${name}` : `table ${name} exists; options updated where given`);
    out.one(description, DESCRIPTION_ROWS);
  });

  const alter = table
    .command("alter")
    .description("change options of an existing table (a missing table is an error: nothing is created)")
    .argument("<name>", "table name");
  for (const option of tableOptionFlags()) alter.addOption(option);
  alter.action(async (name: string, flags: Record<string, unknown>, cmd: Command) => {
    const options = tableOptionsFromFlags(flags);
    if (Object.keys(options).length === 0) throw new CliError("give at least one option to change (see --help)");
    const client = clientFor(cmd, io);
    await client.describeTable(name); // table_not_found (exit 1) rather than a new table from a typo
    const { table: description } = await client.createTable(name, options);
    new Printer(io, outputFormat(cmd, io)).one(description, DESCRIPTION_ROWS);
  });

  table
    .command("list")
    .description("list the message tables with their stats, by name, a page at a time")
    .option("--limit <n>", "tables per page (1..1000)", wholeNumber(1, 1000), 100)
    .option("--cursor <cursor>", "continue after an earlier page (printed on stderr when there is more)")
    .option("--all", "follow every page to the end")
    .action(async (flags: { limit: number; cursor?: string; all?: boolean }, cmd: Command) => {
      const client = clientFor(cmd, io);
      await printPages(new Printer(io, outputFormat(cmd, io)), TABLE_COLUMNS, flags, async (cursor) => {
        const page = await client.listTablesPage({ limit: flags.limit, ...(cursor === undefined ? {} : { cursor }) });
        return { items: page.tables as TableDescription[], next: page.next }; // with stats: every table has them
      });
    });

  table
    .command("describe")
    .description("show a table's options and stats")
    .argument("<name>", "table name")
    .action(async (name: string, _flags: unknown, cmd: Command) => {
      new Printer(io, outputFormat(cmd, io)).one(await clientFor(cmd, io).describeTable(name), DESCRIPTION_ROWS);
    });

  for (const [op, what] of [
    ["pause", "stop delivery from a table on every node (enqueues go on; subscribers stay connected)"],
    ["resume", "start delivery from a paused table again"],
  ] as const) {
    table
      .command(op)
      .description(what)
      .argument("<name>", "table name")
      .action(async (name: string, _flags: unknown, cmd: Command) => {
        const client = clientFor(cmd, io);
        const description = op === "pause" ? await client.pauseTable(name) : await client.resumeTable(name);
        new Printer(io, outputFormat(cmd, io)).one(description, DESCRIPTION_ROWS);
      });
  }

  table
    .command("purge")
    .description("delete every unacked message of a table (ready, delayed, in flight); dead letters stay")
    .argument("<name>", "table name")
    .option("--yes", "do it: without this flag only the count that would be deleted is shown")
    .action(async (name: string, flags: { yes?: boolean }, cmd: Command) => {
      const client = clientFor(cmd, io);
      if (!flags.yes) {
        const { stats } = await client.describeTable(name);
        throw new CliError(
          `${stats.ready + stats.delayed + stats.inFlight} unacked messages of ${name} would be deleted: add --yes to purge`,
        );
      }
      new Printer(io, outputFormat(cmd, io)).one({ name, purged: await client.purgeTable(name) });
    });

  table
    .command("drop")
    .description("drop a table and every message in it")
    .argument("<name>", "table name")
    .action(async (name: string, _flags: unknown, cmd: Command) => {
      await clientFor(cmd, io).dropTable(name);
      new Printer(io, outputFormat(cmd, io)).one({ name, dropped: true });
    });
}
