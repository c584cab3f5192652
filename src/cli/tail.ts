/** `tablemq tail <table>`: subscribe and print one JSON line per message. */
import type { Command } from "commander";
import { wholeNumber } from "./flags.js";
import { type CliIo, clientFor } from "./io.js";
import { outputFormat, Printer } from "./output.js";

/** What tail prints of a message (its receipt is left out: tail acks by id). */
interface TailLine {
  id: string;
  priority: number;
  epoch: number;
  payload: unknown;
}

interface TailFlags {
  ack?: boolean;
  maxInFlight?: number;
  count?: number;
  reconnect: boolean;
}

export function registerTail(program: Command, io: CliIo): void {
  program
    .command("tail")
    .description("subscribe to a table and print each message {id, priority, epoch, payload} as it arrives")
    .argument("<table>", "table name")
    .option("--ack", "ack each message once printed (without it messages are redelivered after the ack wait)")
    .option("--max-in-flight <n>", "unacked messages the server may send at once (default: the server's, or --count)", wholeNumber(1))
    .option("--count <n>", "exit after this many messages", wholeNumber(1))
    .option("--no-reconnect", "exit with an error when the connection drops instead of reconnecting")
    .action(async (table: string, flags: TailFlags, cmd: Command) => {
      const maxInFlight = flags.maxInFlight ?? (flags.count !== undefined ? Math.min(flags.count, 1000) : undefined);
      const sub = clientFor(cmd, io).subscribe(table, {
        ...(maxInFlight !== undefined ? { maxInFlight } : {}),
        reconnect: flags.reconnect ? {} : false,
      });
      sub.on("reconnecting", ({ delayMs, error }) => io.stderr.write(`reconnecting in ${delayMs} ms (${error.message})\n`));
      sub.on("error", (err, { fatal }) => {
        if (!fatal) io.stderr.write(`warning: ${err.message}\n`);
      });
      const stop = () => void sub.close();
      if (io.handleSignals) {
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      }
      io.stdout.on("error", stop); // e.g. EPIPE when piped into `head`
      const printed = new Printer(io, outputFormat(cmd, io)).stream<TailLine>([
        ["ID", (m) => m.id],
        ["PRIORITY", (m) => m.priority],
        ["EPOCH", (m) => m.epoch],
        ["PAYLOAD", (m) => JSON.stringify(m.payload)],
      ]);
      try {
        let seen = 0;
        for await (const msg of sub) {
          printed.add({ id: msg.id, priority: msg.priority, epoch: msg.epoch, payload: msg.payload });
          if (flags.ack) msg.ack();
          if (flags.count !== undefined && ++seen >= flags.count) break; // break closes: acks are flushed first
        }
      } finally {
        await sub.close();
        printed.end();
        io.stdout.off("error", stop);
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
      }
    });
}
