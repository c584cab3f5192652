/**
 * Vitest global setup: decides which MySQL-compatible server the integration tests use and provides its
 * URL to the tests as `inject("mysqlUrl")` (empty string = no database; integration tests then skip).
 *
 * Order: $TABLEMQ_TEST_MYSQL_URL if set; else a testcontainers MySQL 8.0 container if a container
 * runtime answers quickly; else mysql://root@127.0.0.1:3306/test. The chosen URL must answer SELECT 1.
 * Without any database the run says so loudly, and fails when $CI is set.
 *
 * Each run is isolated from any other run against the same server (test/support/run-id.ts): it gets a run
 * id (`inject("testRunId")`), and `mysqlUrl` names a database of the run's own, `tablemq_<run id>`, made
 * here; test files make theirs as `tablemq_<run id>_<name>` (useOwnDatabase). The teardown drops every
 * database of the run; the setup first drops those of runs started more than 6 hours ago (crashed runs:
 * SIGKILL, a power cut), so leftovers never pile up. Vitest skips the teardown when interrupted (Ctrl-C,
 * SIGTERM: it exits at once); then a detached process started on exit drops them. The fault suite writes its
 * figures to a directory of the run's own (`inject("faultsDir")`, from mkdtemp), which is removed at the end
 * when it stayed empty.
 */
import { mkdtempSync, readdirSync, rmdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConnection } from "mysql2/promise";
import type { TestProject } from "vitest/node";
import { parseMysqlUrl, redact } from "../../src/store/mysql/connect.js";
import { hasRedisServer, REDIS_URL, redisAnswers } from "./redis.js";
import { newRunId } from "./run-id.js";
import { dropRunDatabases, dropRunDatabasesLater, startRun, type Run } from "./run-databases.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** URL of the run's own integration database; "" when there is none (integration tests skip). */
    mysqlUrl: string;
    /** This run's id, `<yymmddhhmm>_<6 hex>`: test databases are `tablemq_<run id>_<name>`. */
    testRunId: string;
    /** A directory of this run's own for the fault suite's figures (kept after the run when not empty). */
    faultsDir: string;
  }
}

const DEFAULT_URL = "mysql://root@127.0.0.1:3306/test";
const RUNTIME_PROBE_MS = 5_000;
const PING_MS = 5_000;

interface Database {
  url: string;
  source: string;
  stop?: () => Promise<void>;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const faultsDir = mkdtempSync(join(tmpdir(), "tablemq-faults-"));
  project.provide("faultsDir", faultsDir);
  let faultsDirDone = false;
  const keepOrRemoveFaultsDir = () => {
    if (faultsDirDone) return;
    faultsDirDone = true;
    try {
      if (readdirSync(faultsDir).length === 0) rmdirSync(faultsDir);
      else process.stderr.write(`[tablemq tests] fault suite figures kept in ${faultsDir}\n`);
    } catch {
      // already gone
    }
  };
  const stopWatching = onInterrupt(keepOrRemoveFaultsDir);

  // The several-nodes tests need a Redis (and redis-server, to start their own); without them they skip,
  // which CI must not let pass quietly.
  if (process.env.CI) {
    if (!(await redisAnswers())) throw new Error(`no Redis answers at ${REDIS_URL} for the several-nodes tests (CI is set)`);
    if (!hasRedisServer()) throw new Error("no redis-server binary for the several-nodes fault tests (CI is set)");
  }

  const failures: string[] = [];
  const db = await chooseDatabase(failures);
  if (!db) {
    stopWatching();
    keepOrRemoveFaultsDir();
    warnNoDatabase(failures);
    if (process.env.CI) throw new Error("no MySQL-compatible database for the integration tests (CI is set)");
    project.provide("mysqlUrl", "");
    project.provide("testRunId", newRunId(Math.floor(Date.now() / 1000)));
    return async () => keepOrRemoveFaultsDir();
  }

  let run: Run;
  try {
    run = await startRun(db.url);
  } catch (err) {
    stopWatching();
    keepOrRemoveFaultsDir();
    await db.stop?.();
    throw err;
  }
  process.stderr.write(
    `[tablemq tests] integration database: ${redact(db.url)} (${db.source}); this run's databases: ${run.database}*` +
      (run.staleDropped.length > 0 ? `; dropped ${run.staleDropped.length} left by runs older than 6 h` : "") +
      "\n",
  );
  project.provide("testRunId", run.id);
  project.provide("mysqlUrl", run.url);
  // Interrupted (no teardown): drop them from a process of its own, as this one is about to exit. (A
  // container goes away with its databases.)
  const stopWatchingRun = db.stop ? () => {} : onInterrupt(() => dropRunDatabasesLater(db.url, run.id));
  return async () => {
    stopWatchingRun();
    stopWatching();
    try {
      const left = await dropRunDatabases(db.url, run.id);
      if (left.length > 0) {
        process.stderr.write(`[tablemq tests] could not drop this run's databases (a run 6 h later will): ${left.join(", ")}\n`);
      }
    } finally {
      keepOrRemoveFaultsDir();
      await db.stop?.();
    }
  };
}

/**
 * Runs `fn` (synchronous) once if the process ends before the returned function is called. Vitest skips
 * the global teardown on Ctrl-C or SIGTERM (it exits at once, and the signal may end the process without
 * an `exit` event), so the signals are watched too; this listener never keeps the process alive.
 */
function onInterrupt(fn: () => void): () => void {
  const events = ["exit", "SIGINT", "SIGTERM"] as const;
  let done = false;
  const listener = (event: (typeof events)[number]) => {
    if (done) return;
    done = true;
    stop();
    fn();
    // Nobody else handles it (vitest's handler is gone once it closes): the signal's default, ending the process.
    if (event !== "exit" && process.listenerCount(event) === 0) process.kill(process.pid, event);
  };
  const listeners = events.map((e) => [e, () => listener(e)] as const);
  const stop = () => {
    for (const [e, l] of listeners) process.off(e, l);
  };
  for (const [e, l] of listeners) process.once(e, l);
  return () => {
    done = true;
    stop();
  };
}

async function chooseDatabase(failures: string[]): Promise<Database | undefined> {
  const fromEnv = process.env.TABLEMQ_TEST_MYSQL_URL;
  if (fromEnv) {
    // An explicit URL is a decision: do not silently test something else when it is down.
    const error = await ping(fromEnv);
    if (error === undefined) return { url: fromEnv, source: "TABLEMQ_TEST_MYSQL_URL" };
    failures.push(`TABLEMQ_TEST_MYSQL_URL=${redact(fromEnv)} did not answer: ${error}`);
    return undefined;
  }
  const container = await startContainer(failures);
  if (container) return container;
  const error = await ping(DEFAULT_URL);
  if (error === undefined) return { url: DEFAULT_URL, source: "default local server" };
  failures.push(`${DEFAULT_URL} did not answer: ${error}`);
  return undefined;
}

/** A MySQL 8.0 container, only when a container runtime answers within RUNTIME_PROBE_MS. */
async function startContainer(failures: string[]): Promise<Database | undefined> {
  try {
    const { getContainerRuntimeClient } = await import("testcontainers");
    await withTimeout(getContainerRuntimeClient(), RUNTIME_PROBE_MS, "container runtime probe");
  } catch (err) {
    failures.push(`testcontainers: no container runtime (${message(err)})`);
    return undefined;
  }
  try {
    const { MySqlContainer } = await import("@testcontainers/mysql");
    const container = await new MySqlContainer("mysql:8.0").start();
    const url = container.getConnectionUri(true);
    const error = await ping(url);
    if (error !== undefined) {
      await container.stop();
      failures.push(`testcontainers MySQL started but did not answer: ${error}`);
      return undefined;
    }
    return { url, source: "testcontainers mysql:8.0", stop: async () => void (await container.stop()) };
  } catch (err) {
    failures.push(`testcontainers: could not start mysql:8.0 (${message(err)})`);
    return undefined;
  }
}

/** undefined when the server answers SELECT 1, else the reason. */
async function ping(url: string): Promise<string | undefined> {
  try {
    const { host, port, user, password, database } = parseMysqlUrl(url);
    const conn = await withTimeout(createConnection({ host, port, user, password, database, connectTimeout: PING_MS }), PING_MS, "connect");
    try {
      await withTimeout(conn.query("SELECT 1"), PING_MS, "SELECT 1");
    } finally {
      conn.destroy();
    }
    return undefined;
  } catch (err) {
    return message(err);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function warnNoDatabase(failures: string[]): void {
  const bar = "!".repeat(78);
  process.stderr.write(
    [
      "",
      bar,
      `!!  NO DATABASE FOR THE INTEGRATION TESTS: ${process.env.CI ? "FAILING the run (CI is set)." : "they will be SKIPPED, not run."}`,
      ...failures.map((f) => `!!  - ${f}`),
      "!!  Set TABLEMQ_TEST_MYSQL_URL=mysql://user:pass@host:port/db, start a container runtime, or run",
      `!!  a MySQL 8.0+/MariaDB 10.6+ server at ${DEFAULT_URL}.`,
      "!!  (With CI set, a missing database fails the run.)",
      bar,
      "",
    ].join("\n") + "\n",
  );
}
