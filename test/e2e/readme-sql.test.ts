/**
 * Issue 26: the README's "Enqueue in your own transaction" examples, run as written (only their `tablemq/*`
 * imports point at this checkout) as child processes, against a real server and its MariaDB database: the
 * Kysely example places order 1 with its message, the mysql2 example marks it paid with two more (one an hour
 * away), and the consumer example applies each delivered event to the order and acks it in the same
 * transaction. The table polls every 60 s, so a notify that does not arrive shows as a timeout.
 */
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithDatabase } from "../support/database.js";
import { http, useServerDatabase, useTestServer } from "../support/server.js";
import { waitUntil } from "../support/wait.js";

const README = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
const SRC = fileURLToPath(new URL("../../src/", import.meta.url));
/** Inside node_modules, so the examples' bare imports (kysely, mysql2) resolve as in an application. */
const DIR = fileURLToPath(new URL(`../../node_modules/.cache/tablemq-readme-sql-${process.pid}/`, import.meta.url));

/** The ```ts blocks of a README section, in order. */
function examplesOf(heading: string): string[] {
  const at = README.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`README has no "${heading}" section`);
  const end = README.indexOf("\n## ", at + heading.length + 2);
  return [...README.slice(at, end).matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

function runnable(code: string): string {
  return code
    .replace('from "tablemq/sql"', `from ${JSON.stringify(join(SRC, "sql/index.ts"))}`)
    .replace('from "tablemq/client"', `from ${JSON.stringify(join(SRC, "client/index.ts"))}`);
}

describeWithDatabase("the README's examples of enqueue in your own transaction", () => {
  const t = useTestServer("readme_sql");
  const conn = useServerDatabase(t);
  const children: Array<ReturnType<typeof spawn>> = [];
  beforeAll(() => mkdirSync(DIR, { recursive: true }));
  afterAll(() => {
    for (const c of children) c.kill("SIGKILL");
    rmSync(DIR, { recursive: true, force: true });
  });

  /** Runs example `i` as a child process; resolves with its exit code and output. */
  const start = (i: number, code: string) => {
    const file = join(DIR, `example-${i}.mts`);
    writeFileSync(file, runnable(code));
    const child = spawn(process.execPath, ["--import", "tsx", file], {
      env: { ...process.env, TABLEMQ_URL: t.base, DATABASE_URL: t.databaseUrl },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    let output = "";
    child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
    return { child, exited, output: () => output };
  };
  const query = async (text: string) => (await conn.pool.query(text))[0] as Array<Record<string, unknown>>;

  it("place an order with its message, mark it paid with two more, and a consumer applies and acks them", async () => {
    const [placing, paying, consuming] = examplesOf("## Enqueue in your own transaction");
    expect([placing, paying, consuming].every((c) => c?.includes('from "tablemq/sql"'))).toBe(true);
    await conn.pool.query("CREATE TABLE orders (id INT PRIMARY KEY, status VARCHAR(20) NOT NULL)");
    const created = await http(t.base, "PUT", "/v1/tables/order_events", { ackWaitMs: 30_000, pollIntervalMs: 60_000 });
    expect(created.status).toBe(201);

    const consumer = start(3, consuming!);
    await waitUntil(async () => (await http(t.base, "GET", "/v1/tables/order_events")).body.stats.receivers === 1, "the consumer", 15_000);

    const placed = start(1, placing!);
    expect(await placed.exited, placed.output()).toBe(0);
    expect(await query("SELECT status FROM orders")).toEqual([{ status: "placed" }]);
    await waitUntil(
      async () => Number((await query("SELECT COUNT(*) AS n FROM order_events WHERE time_acked IS NOT NULL"))[0]!.n) === 1,
      `the "placed" event applied and acked (consumer: ${consumer.output()})`,
      5_000,
    );

    const paid = start(2, paying!);
    expect(await paid.exited, paid.output()).toBe(0);
    await waitUntil(
      async () => Number((await query("SELECT COUNT(*) AS n FROM order_events WHERE time_acked IS NOT NULL"))[0]!.n) === 2,
      `the "paid" event applied and acked (consumer: ${consumer.output()})`,
      5_000,
    );
    expect(await query("SELECT status FROM orders")).toEqual([{ status: "paid" }]);
    // The reminder waits for its hour: unacked, not delivered.
    const waiting = await query("SELECT CAST(message AS CHAR) AS m FROM order_events WHERE time_acked IS NULL");
    expect(waiting.map((r) => JSON.parse(String(r.m)))).toEqual([{ orderId: 1, event: "remind" }]);

    consumer.child.kill("SIGTERM");
    expect(await consumer.exited, consumer.output()).toBe(0);
    expect(consumer.output()).toBe("");
  });
});
