/**
 * Vitest global setup: decides which MySQL-compatible server the integration tests use and provides its
 * URL to the tests as `inject("mysqlUrl")` (empty string = no database; integration tests then skip).
 *
 * Order: $TABLEMQ_TEST_MYSQL_URL if set; else a testcontainers MySQL 8.0 container if a container
 * runtime answers quickly; else mysql://root@127.0.0.1:3306/test. The chosen URL must answer SELECT 1.
 * Without any database the run says so loudly, and fails when $CI is set.
 */
import { createConnection } from "mysql2/promise";
import type { TestProject } from "vitest/node";
import { parseMysqlUrl, redact } from "../../src/store/mysql/connect.js";

const DEFAULT_URL = "mysql://root@127.0.0.1:3306/test";
const RUNTIME_PROBE_MS = 5_000;
const PING_MS = 5_000;

interface Database {
  url: string;
  source: string;
  stop?: () => Promise<void>;
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const failures: string[] = [];
  const db = await chooseDatabase(failures);
  if (!db) {
    warnNoDatabase(failures);
    if (process.env.CI) throw new Error("no MySQL-compatible database for the integration tests (CI is set)");
    project.provide("mysqlUrl", "");
    return undefined;
  }
  process.stderr.write(`[tablemq tests] integration database: ${redact(db.url)} (${db.source})\n`);
  project.provide("mysqlUrl", db.url);
  return db.stop;
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
