/**
 * The Node flags tablemq's server runs with, read from package.json's `start` script
 * ("exec node <flags> --import tsx src/cli/main.ts serve": exec, so npm's signals reach the server), so the bench starts the server as `npm start` does and
 * the flags are written down once (the Docker image's ENTRYPOINT repeats them; a unit test keeps the two equal).
 */
export function serverNodeFlags(startScript: string): string[] {
  const words = startScript.trim().split(/\s+/);
  if (words[0] === "exec") words.shift();
  if (words[0] !== "node") throw new Error(`the start script does not run node: ${JSON.stringify(startScript)}`);
  const flags: string[] = [];
  for (const word of words.slice(1)) {
    if (!word.startsWith("--") || word === "--import") break;
    flags.push(word);
  }
  return flags;
}

/** Space-separated words, e.g. Node flags from an environment variable ("" or unset: none). */
export const words = (text: string | undefined): string[] => (text ?? "").split(" ").filter(Boolean);

/**
 * The log level the bench runs tablemq's server at (README: at the default `info` a request logs nothing
 * either; `warn` also leaves out the start and stop lines).
 */
export const BENCH_LOG_LEVEL = "warn";
