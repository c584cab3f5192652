/**
 * Runs the real server in a process of its own, for tests that signal or kill it:
 *   node --import tsx test/support/serve-process.ts
 * Configuration comes from the TABLEMQ_* environment variables; prints {"url": ...} on stdout once listening.
 */
import { loadConfig } from "../../src/server/config.js";
import { installSignalHandlers, startServer } from "../../src/server/server.js";

const server = await startServer(loadConfig(process.env));
installSignalHandlers(server);
process.stdout.write(`${JSON.stringify({ url: server.url, pid: process.pid })}\n`);
