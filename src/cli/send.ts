/** `tablemq send <table> [json...]`: enqueue payloads from the arguments or from stdin (JSON lines). */
import type { Command } from "commander";
import { PRIORITY } from "../model/limits.js";
import type { PublishMessage } from "../client/types.js";
import { wholeNumber } from "./flags.js";
import { type CliIo, clientFor } from "./io.js";
import { outputFormat, Printer } from "./output.js";
import { DEFAULT_SEND_BATCH, parsePayloadArgs, payloadBatches, readLines } from "./lines.js";

interface SendFlags {
  priority?: number;
  delayMs?: number;
  batch: number;
}

export function registerSend(program: Command, io: CliIo): void {
  program
    .command("send")
    .description("enqueue messages: each argument is one JSON payload; without arguments, one JSON payload per stdin line")
    .argument("<table>", "table name")
    .argument("[json...]", "payloads (JSON values); read from stdin when absent")
    .option(
      "--priority <n>",
      `${PRIORITY.min}..${PRIORITY.max}, lower is delivered first (default ${PRIORITY.default})`,
      wholeNumber(PRIORITY.min, PRIORITY.max),
    )
    .option("--delay-ms <ms>", "deliver after this delay", wholeNumber(0))
    .option("--batch <n>", "messages per request", wholeNumber(1, 1000), DEFAULT_SEND_BATCH)
    .addHelpText(
      "after",
      '\nPrints the id of each message ({"id"} per line with -o jsonl). A stdin line that is not JSON stops the\ncommand; nothing of its batch is sent (earlier batches were).',
    )
    .action(async (table: string, args: string[], flags: SendFlags, cmd: Command) => {
      const client = clientFor(cmd, io);
      const printed = new Printer(io, outputFormat(cmd, io)).stream<{ id: string }>([["ID", (m) => m.id]]);
      const publish = async (payloads: unknown[]) => {
        const messages = payloads.map((payload) => {
          const m: PublishMessage = { payload };
          if (flags.priority !== undefined) m.priority = flags.priority;
          if (flags.delayMs !== undefined) m.delayMs = flags.delayMs;
          return m;
        });
        const { ids } = await client.publish(table, messages);
        for (const id of ids) printed.add({ id });
      };
      try {
        if (args.length > 0) {
          const payloads = parsePayloadArgs(args);
          for (let i = 0; i < payloads.length; i += flags.batch) await publish(payloads.slice(i, i + flags.batch));
          return;
        }
        if (io.stdin.isTTY) io.stderr.write("reading JSON payloads from stdin, one per line (end with Ctrl-D)\n");
        for await (const batch of payloadBatches(readLines(io.stdin), flags.batch)) await publish(batch);
      } finally {
        printed.end(); // what was sent is listed, even when a later batch failed
      }
    });
}
