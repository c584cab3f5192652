/**
 * The tablemq CLI as a function: `run(argv, io)` parses `argv` (without "node" and the script) and returns
 * the exit code: 0 ok, 1 a server or runtime error (`error <code>: <message>`), 2 a usage or input error,
 * whoever found it: the CLI's flags, the client's checks or the server's 400.
 */
import { Command, CommanderError, Option } from "commander";
import { TablemqError } from "../client/http.js";
import { VERSION } from "../version.js";
import { wholeNumber } from "./flags.js";
import { CliError, type CliIo } from "./io.js";
import { outputOption } from "./output.js";
import { registerDlq } from "./dlq.js";
import { registerMigrate } from "./migrate.js";
import { registerPeek } from "./peek.js";
import { registerSend } from "./send.js";
import { registerServe } from "./serve.js";
import { registerSettle } from "./settle.js";
import { registerStats } from "./stats.js";
import { registerTable } from "./table.js";
import { registerTail } from "./tail.js";
import { registerWebhook } from "./webhook.js";

export const DEFAULT_URL = "http://127.0.0.1:8080";

export function buildProgram(io: CliIo): Command {
  const env = io.env ?? process.env;
  const program = new Command("tablemq")
    .description("a durable message queue on MySQL tables")
    .version(VERSION, "-V, --version", "print the version")
    .option("--url <url>", "server URL, or several separated by commas (TABLEMQ_URL)", env.TABLEMQ_URL || DEFAULT_URL)
    // No commander default from the environment: help would print the token.
    .option("--token <token>", "bearer token (TABLEMQ_TOKEN)")
    .option("--timeout-ms <ms>", "HTTP request timeout", wholeNumber(1), 30_000)
    .addOption(outputOption())
    .addOption(new Option("--json", "the same as -o jsonl (kept from earlier versions)").hideHelp())
    .exitOverride()
    .configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: (s) => void io.stderr.write(s) })
    .showHelpAfterError("(run with --help for usage)");
  registerServe(program, io);
  registerTable(program, io);
  registerSend(program, io);
  registerTail(program, io);
  registerPeek(program, io);
  registerStats(program, io);
  registerSettle(program, io);
  registerWebhook(program, io);
  registerDlq(program, io);
  registerMigrate(program, io);
  return program;
}

export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync([...argv], { from: "user" });
    return 0;
  } catch (err) {
    return report(err, io);
  }
}

/** Error codes that mean the input was wrong: a usage error (2), whether the client or the server said so. */
const INPUT_ERRORS = new Set(["validation_failed", "bad_request"]);

function report(err: unknown, io: CliIo): number {
  if (err instanceof CommanderError) {
    // commander has printed the message already; help and version are not failures.
    if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.exitCode === 0) return 0;
    return 2;
  }
  if (err instanceof TablemqError) {
    io.stderr.write(`error ${err.code}: ${err.message}\n`);
    return INPUT_ERRORS.has(err.code) ? 2 : 1;
  }
  if (err instanceof CliError) {
    io.stderr.write(`error: ${err.message}\n`);
    return err.exitCode;
  }
  io.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 1;
}
