/** `tablemq webhook put|list|delete`: a table's webhook subscribers. */
import type { Command } from "commander";
import type { Webhook, WebhookSettings } from "../client/types.js";
import { wholeNumber } from "./flags.js";
import { CliError, type CliIo, clientFor } from "./io.js";
import { type Column, formatDuration, formatTime, outputFormat, Printer } from "./output.js";

const WEBHOOK_COLUMNS: ReadonlyArray<Column<Webhook>> = [
  ["NAME", (w) => w.name],
  ["STATE", (w) => w.state],
  ["HELD", (w) => w.held],
  ["FAILURES", (w) => w.failures],
  ["LAST_DELIVERED", (w) => formatTime(w.lastDeliveredAt)],
  ["URL", (w) => w.url],
];

const WEBHOOK_ROWS: ReadonlyArray<Column<Webhook>> = [
  ["name", (w) => w.name],
  ["url", (w) => w.url],
  ["state", (w) => w.state],
  ["held", (w) => w.held],
  ["batch size", (w) => w.batchSize],
  ["timeout", (w) => formatDuration(w.timeoutMs)],
  ["signed", (w) => (w.hasSecret ? "yes" : "no")],
  ["failures", (w) => w.failures],
  ["last error", (w) => (w.lastError === null ? "-" : `${w.lastError} (${formatTime(w.lastErrorAt)})`)],
  ["next retry", (w) => formatTime(w.nextRetryAt)],
  ["last delivered", (w) => formatTime(w.lastDeliveredAt)],
  ["created", (w) => formatTime(w.createdAt)],
  ["updated", (w) => formatTime(w.updatedAt)],
];

export function registerWebhook(program: Command, io: CliIo): void {
  const webhook = program.command("webhook").description("add, show, list and delete a table's webhook subscribers (HTTP push)");

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
    .action(
      async (
        table: string,
        name: string,
        url: string,
        flags: { batchSize?: number; postTimeoutMs?: number; secretEnv?: string },
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
        const out = new Printer(io, outputFormat(cmd, io));
        const { created, webhook: shown } = await clientFor(cmd, io).putWebhook(table, name, settings);
        out.note(created ? `created webhook ${name} on ${table}` : `replaced webhook ${name} on ${table}`);
        out.one(shown, WEBHOOK_ROWS);
      },
    );

  webhook
    .command("list")
    .description("list a table's webhooks with their state (secrets are never shown)")
    .argument("<table>", "table name")
    .action(async (table: string, _flags: unknown, cmd: Command) => {
      new Printer(io, outputFormat(cmd, io)).many(await clientFor(cmd, io).listWebhooks(table), WEBHOOK_COLUMNS);
    });

  webhook
    .command("get")
    .description("show one webhook: its settings (never the secret) and its health")
    .argument("<table>", "table name")
    .argument("<name>", "webhook name")
    .action(async (table: string, name: string, _flags: unknown, cmd: Command) => {
      new Printer(io, outputFormat(cmd, io)).one(await clientFor(cmd, io).getWebhook(table, name), WEBHOOK_ROWS);
    });

  webhook
    .command("delete")
    .description("delete a webhook; the messages it holds go back to the table")
    .argument("<table>", "table name")
    .argument("<name>", "webhook name")
    .action(async (table: string, name: string, _flags: unknown, cmd: Command) => {
      await clientFor(cmd, io).deleteWebhook(table, name);
      new Printer(io, outputFormat(cmd, io)).one({ table, name, deleted: true });
    });
}
