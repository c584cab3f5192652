/** `tablemq table create|list|describe|drop`. */
import type { Command } from "commander";
import { TABLE_NAME_PATTERN } from "../model/limits.js";
import { tableOptionFlags, tableOptionsFromFlags } from "./flags.js";
import { type CliIo, clientFor, writeJson } from "./io.js";

export function registerTable(program: Command, io: CliIo): void {
  const table = program.command("table").description("create, list, describe and drop message tables");

  const create = table
    .command("create")
    .description("create a message table, or change the given options of an existing one")
    .argument("<name>", `table name: ${TABLE_NAME_PATTERN}`)
    .option("--json", "compact JSON output");
  for (const option of tableOptionFlags()) create.addOption(option);
  create.action(async (name: string, flags: Record<string, unknown>, cmd: Command) => {
    const { created, table: description } = await clientFor(cmd, io).createTable(name, tableOptionsFromFlags(flags));
    io.stderr.write(created ? `created table ${name}\n` : `table ${name} exists; options updated where given\n`);
    writeJson(io.stdout, description, flags.json === true);
  });

  table
    .command("list")
    .description("list the message tables with their options and stats")
    .option("--json", "compact JSON output")
    .action(async (flags: { json?: boolean }, cmd: Command) => {
      writeJson(io.stdout, await clientFor(cmd, io).listTables(), flags.json);
    });

  table
    .command("describe")
    .description("show a table's options and stats")
    .argument("<name>", "table name")
    .option("--json", "compact JSON output")
    .action(async (name: string, flags: { json?: boolean }, cmd: Command) => {
      writeJson(io.stdout, await clientFor(cmd, io).describeTable(name), flags.json);
    });

  table
    .command("drop")
    .description("drop a table and every message in it")
    .argument("<name>", "table name")
    .option("--json", "compact JSON output")
    .action(async (name: string, flags: { json?: boolean }, cmd: Command) => {
      await clientFor(cmd, io).dropTable(name);
      writeJson(io.stdout, { name, dropped: true }, flags.json);
    });
}
