#!/usr/bin/env node
/**
 * The `tablemq` command. Run with `npx tsx src/cli/main.ts ...` or, built, `node dist/cli/main.js ...`.
 * Tests drive `run` in-process instead (see program.ts).
 */
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { run } from "./program.js";

export { run } from "./program.js";
export type { CliIo } from "./io.js";

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    // Through an npm bin link argv[1] is the link: compare real paths.
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  // `tablemq ... | head`: a closed pipe ends the command quietly.
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(0);
    throw err;
  });
  const code = await run(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    handleSignals: true,
  });
  // Set, not exit: `serve` (and a reconnecting `tail`) keep the process alive by their own handles.
  process.exitCode = code;
}
