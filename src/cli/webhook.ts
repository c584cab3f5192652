/** `tablemq webhook put|list|delete`: a table's webhook subscribers. */
import type { Command } from "commander";
import type { WebhookSettings } from "../client/types.js";
import { wholeNumber } from "./flags.js";
import { CliError, type CliIo, clientFor, writeJson } from "./io.js";

export function registerWebhook(program: Command, io: CliIo): void {
  const webhook = program.command("webhook").description("add, list and delete a table's webhook subscribers (HTTP push)");

  webhook
    .command("put")
    .description("create or replace a webhook: batches of the table's messages are POSTed to the URL")
    .argument("<table>", "table name")
    .argument("<name>", "webhook name: ^[a-z0-9][a-z0-9_.-]{0,62}$")
    // Positional, not --url: that global flag is the server's address.
    .argument("<url>", "http or https URL to POST to")
    .option("--batch-size <n>", "most messages per POST (1..1000, default 10)", wholeNumber(1, 1000))
    // Not --timeout-ms: that global flag is the CLI's own HTTP timeout.
    .option("--post-timeout-ms <ms>", "how long a POST may take (100..120000, default 10000)", wholeNumber(100, 120_000))
    .option("--secret-env <var>", "sign requests with the secret in this environment variable (x-tablemq-signature)")
    .option("--json", "compact JSON output")
    .action(
      async (
        table: string,
        name: string,
        url: string,
        flags: { batchSize?: number; postTimeoutMs?: number; secretEnv?: string; json?: boolean },
        cmd: Command,
      ) => {
        const settings: WebhookSettings = { url };
        if (flags.batchSize !== undefined) settings.batchSize = flags.batchSize;
        if (flags.postTimeoutMs !== undefined) settings.timeoutMs = flags.postTimeoutMs;
        if (flags.secretEnv !== undefined) {
          const secret = (io.env ?? process.env)[flags.secretEnv];
          if (!secret) throw new CliError(`--secret-env: ${flags.secretEnv} is not set or empty`);
          settings.secret = secret;
        }
        const { created, webhook: shown } = await clientFor(cmd, io).putWebhook(table, name, settings);
        io.stderr.write(created ? `created webhook ${name} on ${table}\n` : `replaced webhook ${name} on ${table}\n`);
        writeJson(io.stdout, shown, flags.json === true);
      },
    );

  webhook
    .command("list")
    .description("list a table's webhooks with their state (secrets are never shown)")
    .argument("<table>", "table name")
    .option("--json", "compact JSON output")
    .action(async (table: string, flags: { json?: boolean }, cmd: Command) => {
      writeJson(io.stdout, await clientFor(cmd, io).listWebhooks(table), flags.json);
    });

  webhook
    .command("delete")
    .description("delete a webhook; the messages it holds go back to the table")
    .argument("<table>", "table name")
    .argument("<name>", "webhook name")
    .option("--json", "compact JSON output")
    .action(async (table: string, name: string, flags: { json?: boolean }, cmd: Command) => {
      await clientFor(cmd, io).deleteWebhook(table, name);
      writeJson(io.stdout, { table, name, deleted: true }, flags.json);
    });
}
