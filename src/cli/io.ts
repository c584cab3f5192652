/** What a CLI command talks to, so tests can drive the CLI in-process with their own streams. */
import type { Command } from "commander";
import { TablemqClient } from "../client/client.js";
import { TablemqError } from "../client/http.js";
import { serverUrls } from "./flags.js";
import type { RunningServer } from "../server/server.js";

export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Where TABLEMQ_URL, TABLEMQ_TOKEN and the server's settings are read; process.env by default. */
  env?: NodeJS.ProcessEnv;
  /**
   * True in the real process (main.ts): `serve` installs SIGTERM/SIGINT handlers, `tail` closes cleanly
   * on them. Tests leave it off.
   */
  handleSignals?: boolean;
  /** `serve` without handleSignals: receives the running server (the caller closes it). */
  onServerStarted?: (server: RunningServer) => void;
}

/** A failure the CLI reports as `error: <message>` with its exit code (2 = usage or input). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
    this.name = "CliError";
  }
}

export interface GlobalOptions {
  url: string;
  token?: string;
  timeoutMs: number;
}

export function clientFor(cmd: Command, io: CliIo): TablemqClient {
  const g = cmd.optsWithGlobals() as GlobalOptions;
  const token = g.token || (io.env ?? process.env).TABLEMQ_TOKEN || undefined;
  try {
    return new TablemqClient({ url: serverUrls(g.url), timeoutMs: g.timeoutMs, ...(token ? { token } : {}) });
  } catch (err) {
    if (err instanceof TablemqError) throw new CliError(`--url: ${err.message}`);
    throw err;
  }
}
