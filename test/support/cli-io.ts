import { PassThrough, Readable } from "node:stream";
import type { CliIo } from "../../src/cli/io.js";

/** In-memory streams for driving the CLI's `run` in-process, with what it printed. */
export function captureIo(env: NodeJS.ProcessEnv = {}, stdin = ""): { io: CliIo; out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (c) => (out += c));
  stderr.on("data", (c) => (err += c));
  return { io: { stdout, stderr, stdin: Readable.from(stdin === "" ? [] : [stdin]), env }, out: () => out, err: () => err };
}
