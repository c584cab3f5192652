/** `tablemq serve`: run the server. Its flags are generated from SETTINGS (each also an env variable). */
import { type Command, Option } from "commander";
import { ConfigError, DEFAULT_CONFIG, loadConfig, redactUrl, SETTINGS, type ServerConfig } from "../server/config.js";
import { CliError, type CliIo } from "./io.js";

export function registerServe(program: Command, io: CliIo): void {
  const serve = program
    .command("serve")
    .description("run the tablemq server (HTTP and WebSocket on one port)")
    .addHelpText("after", "\nEvery flag can also be given as its environment variable; a flag wins over the variable.");
  for (const s of SETTINGS) serve.addOption(new Option(`${s.flag} <value>`, `${s.help} (${s.env}, default ${describeDefault(s.key)})`));
  serve.action(async (flags: Record<string, string>) => {
    const config = configFromFlags(flags, io.env ?? process.env);
    // Loaded here, not at the top: the other commands do not need fastify and the database driver.
    const { startServer, installSignalHandlers } = await import("../server/server.js");
    let server;
    try {
      server = await startServer(config);
    } catch (err) {
      throw new CliError(
        `could not start the server on ${config.host}:${config.port} with ${redactUrl(config.databaseUrl)}: ${(err as Error).message}`,
        1,
      );
    }
    // stdout carries the JSON log lines alone; this line is for the person (or script) that started it.
    io.stderr.write(`tablemq listening on ${server.url}\n`);
    if (io.handleSignals) installSignalHandlers(server, server.app.log);
    else io.onServerStarted?.(server);
  });
}

/** The server configuration from the serve flags (strings, keyed like SETTINGS) over the environment. */
export function configFromFlags(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): ServerConfig {
  const overrides: Partial<Record<keyof ServerConfig, unknown>> = {};
  for (const s of SETTINGS) {
    const value = flags[new Option(`${s.flag} <value>`).attributeName()];
    if (value !== undefined) overrides[s.key] = value;
  }
  try {
    return loadConfig(env, overrides);
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message, 2);
    throw err;
  }
}

function describeDefault(key: keyof ServerConfig): string {
  const v = DEFAULT_CONFIG[key];
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}
