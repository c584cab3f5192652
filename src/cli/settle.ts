/**
 * `tablemq ack|postpone|extend|fail <table> <id|receipt>...`: act on messages by hand. An argument shaped
 * like a receipt (`<id>:<epoch>`, what `tail -o json` and the client show as `receipt`) is fenced: it
 * changes the message only while that delivery is current. Stale receipts are printed and exit 1.
 */
import type { Command } from "commander";
import { wholeNumber } from "./flags.js";
import { CliError, type CliIo, clientFor } from "./io.js";
import { outputFormat, Printer } from "./output.js";

/** A receipt (an id and the epoch it was delivered with); anything else is taken for an id. */
const RECEIPT = /^\d+:\d+$/;

interface Keys {
  ids: string[];
  receipts: string[];
}

function split(keys: readonly string[]): Keys {
  return { ids: keys.filter((k) => !RECEIPT.test(k)), receipts: keys.filter((k) => RECEIPT.test(k)) };
}

/** Runs `op` on the ids and on the receipts; their counts add up, stale receipts are listed. */
async function both(
  keys: Keys,
  byIds: (ids: string[]) => Promise<number>,
  byReceipts: (receipts: string[]) => Promise<{ count: number; stale: string[] }>,
): Promise<{ count: number; stale: string[] }> {
  const count = keys.ids.length > 0 ? await byIds(keys.ids) : 0;
  if (keys.receipts.length === 0) return { count, stale: [] };
  const fenced = await byReceipts(keys.receipts);
  return { count: count + fenced.count, stale: fenced.stale };
}

export function registerSettle(program: Command, io: CliIo): void {
  const command = (name: string, description: string) =>
    program
      .command(name)
      .description(description)
      .argument("<table>", "table name")
      .argument("<keys...>", "message ids, or receipts (<id>:<epoch>) to act only on that delivery");

  const finish = (cmd: Command, answer: Record<string, unknown>, stale: string[]) => {
    new Printer(io, outputFormat(cmd, io)).one(answer);
    if (stale.length > 0) throw new CliError(`stale (delivered again since, left alone): ${stale.join(", ")}`, 1);
  };

  command("ack", "ack messages: they are never delivered again").action(
    async (table: string, keys: string[], _f: unknown, cmd: Command) => {
      const client = clientFor(cmd, io);
      const { count, stale } = await both(
        split(keys),
        (ids) => client.ack(table, ids),
        async (receipts) => {
          const r = await client.ackReceipts(table, receipts);
          return { count: r.acked, stale: r.stale };
        },
      );
      finish(cmd, { acked: count, stale }, stale);
    },
  );

  command("postpone", "make messages due again after a delay (default: the table's backoff)")
    .option("--delay-ms <ms>", "due again after this long", wholeNumber(0))
    .action(async (table: string, keys: string[], flags: { delayMs?: number }, cmd: Command) => {
      const client = clientFor(cmd, io);
      const { count, stale } = await both(
        split(keys),
        (ids) => client.postpone(table, ids, flags.delayMs),
        async (receipts) => {
          const r = await client.postponeReceipts(table, receipts, flags.delayMs);
          return { count: r.postponed, stale: r.stale };
        },
      );
      finish(cmd, { postponed: count, stale }, stale);
    });

  command("extend", "extend the leases of deliveries (receipts only): not due again before --by-ms from now")
    .requiredOption("--by-ms <ms>", "how long from now", wholeNumber(1))
    .action(async (table: string, keys: string[], flags: { byMs: number }, cmd: Command) => {
      const { ids, receipts } = split(keys);
      if (ids.length > 0) throw new CliError(`extend takes receipts (<id>:<epoch>), got ${ids.join(", ")}`);
      const r = await clientFor(cmd, io).extend(table, receipts, flags.byMs);
      finish(cmd, { ...r }, r.stale);
    });

  command("fail", "dead-letter messages at once, whatever attempts they have left")
    .option("--reason <text>", "kept with each dead letter (default: failed by a consumer)")
    .action(async (table: string, keys: string[], flags: { reason?: string }, cmd: Command) => {
      const client = clientFor(cmd, io);
      const { count, stale } = await both(
        split(keys),
        (ids) => client.fail(table, ids, flags.reason),
        async (receipts) => {
          const r = await client.failReceipts(table, receipts, flags.reason);
          return { count: r.failed, stale: r.stale };
        },
      );
      finish(cmd, { failed: count, stale }, stale);
    });
}
