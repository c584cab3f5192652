/**
 * Issue 31's CLI: one output switch with the same meaning everywhere, human-readable times, `stats
 * --watch`, the ack/postpone/extend/fail commands, `table alter`, `webhook get`, and exit codes (bad input 2
 * whoever finds it; partial results 1; `tail` stopped by SIGINT 0). Against a real server and MariaDB.
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, expect, it } from "vitest";
import { run } from "../../src/cli/main.js";
import { TablemqClient } from "../../src/client/client.js";
import type { Message } from "../../src/client/index.js";
import { loadConfig } from "../../src/server/config.js";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { captureIo } from "../support/cli-io.js";
import { describeWithDatabase, uniqueTableName, useOwnDatabase } from "../support/database.js";
import { waitUntil } from "../support/wait.js";

describeWithDatabase("CLI operations", () => {
  const database = useOwnDatabase("cli_ops");
  let server: RunningServer;
  let client: TablemqClient;

  beforeAll(async () => {
    server = await startServer(loadConfig({}, { port: 0, databaseUrl: database.url, logLevel: "silent" }));
    client = new TablemqClient({ url: server.url });
  });
  afterAll(async () => {
    await server?.close();
  });

  async function cli(args: string[], stdin = ""): Promise<{ code: number; out: string; err: string }> {
    const t = captureIo({ TABLEMQ_URL: server.url }, stdin);
    const code = await run(args, t.io);
    return { code, out: t.out(), err: t.err() };
  }
  const lines = (text: string) => text.split("\n").filter((l) => l !== "");

  async function tableWith(messages: number, options: Record<string, number> = {}): Promise<{ table: string; ids: string[] }> {
    const table = uniqueTableName("ops");
    await client.createTable(table, { ackWaitMs: 30_000, ...options });
    const ids =
      messages > 0
        ? (
            await client.publish(
              table,
              Array.from({ length: messages }, (_, i) => ({ payload: { n: i } })),
            )
          ).ids
        : [];
    return { table, ids };
  }

  /** Deliveries of `n` messages, left unacked (the subscription is closed without releasing them). */
  async function deliveries(table: string, n: number): Promise<Message[]> {
    const sub = client.subscribe(table, { maxInFlight: n });
    const got: Message[] = [];
    for await (const m of sub) {
      got.push(m);
      if (got.length === n) break;
    }
    return got;
  }

  it("-o json, jsonl and table mean the same on every command", async () => {
    const { table } = await tableWith(2, { maxAttempts: 1, ackWaitMs: 100, minBackoffMs: 100 });
    await deliveries(table, 2); // never acked: dead at their next delivery
    const watcher = client.subscribe(table);
    await waitUntil(async () => (await client.describeTable(table)).stats.dead === 2, "two dead letters");
    await watcher.close();
    const plain = await tableWith(4); // one message for each tail below
    const commands: string[][] = [
      ["table", "list"],
      ["table", "describe", table],
      ["stats"],
      ["stats", table],
      ["dlq", "list", table],
      ["peek", plain.table],
      ["tail", plain.table, "--count", "1", "--ack"],
      ["send", plain.table, "1", "2"],
    ];
    for (const command of commands) {
      const json = await cli([...command, "-o", "json"]);
      expect(json.code, command.join(" ")).toBe(0);
      expect(() => JSON.parse(json.out), `${command.join(" ")} -o json: ${json.out}`).not.toThrow();
      const jsonl = await cli([...command, "-o", "jsonl"]);
      expect(jsonl.code, command.join(" ")).toBe(0);
      for (const line of lines(jsonl.out)) expect(() => JSON.parse(line), `${command.join(" ")} -o jsonl: ${line}`).not.toThrow();
      const table_ = await cli([...command, "-o", "table"]);
      expect(table_.code, command.join(" ")).toBe(0);
      expect(() => JSON.parse(table_.out), `${command.join(" ")} -o table is text`).toThrow();
      // Not a terminal: JSON lines by default.
      const byDefault = await cli(command);
      for (const line of lines(byDefault.out)) expect(() => JSON.parse(line), `${command.join(" ")} by default: ${line}`).not.toThrow();
    }
    // A list is an array in json, one record per line in jsonl.
    const dead = await cli(["dlq", "list", table, "-o", "json"]);
    expect((JSON.parse(dead.out) as unknown[]).length).toBe(2);
    expect(lines((await cli(["dlq", "list", table, "-o", "jsonl"])).out)).toHaveLength(2);
    expect((await cli(["table", "list", "-o", "nope"])).code).toBe(2);
  });

  it("shows times and durations for people in -o table", async () => {
    const { table } = await tableWith(1, { maxAttempts: 1, ackWaitMs: 100, minBackoffMs: 100 });
    await deliveries(table, 1);
    const watcher = client.subscribe(table);
    await waitUntil(async () => (await client.describeTable(table)).stats.dead === 1, "a dead letter");
    await watcher.close();
    const dead = await cli(["dlq", "list", table, "-o", "table"]);
    expect(dead.out).toMatch(/^ID\s+EPOCH\s+DEAD_AT\s+REASON\s+PAYLOAD\n/);
    expect(dead.out).toMatch(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ \((now|\d+(ms|s) ago)\)/);
    const described = await cli(["table", "describe", table, "-o", "table"]);
    expect(described.out).toMatch(/^ack wait\s+100ms$/m);
    expect(described.out).toMatch(/^purge after\s+1d$/m);
    expect(described.out).toMatch(/^max attempts\s+1$/m);
  });

  it("stats --watch prints again every interval, --count times", async () => {
    const { table } = await tableWith(3);
    const watched = await cli(["stats", table, "--watch", "100", "--count", "3", "-o", "jsonl"]);
    expect(watched.code).toBe(0);
    const prints = lines(watched.out).map((l) => JSON.parse(l) as { name: string; stats: { ready: number } });
    expect(prints).toHaveLength(3);
    expect(prints.every((p) => p.name === table && p.stats.ready === 3)).toBe(true);
    const text = await cli(["stats", "--watch", "100", "--count", "2", "-o", "table"]);
    expect(text.out.match(/^every 100 ms, \d{4}-/gm)).toHaveLength(2);
    expect(text.out.match(/^TABLE\s+READY/gm)).toHaveLength(2);
  });

  it("ack, postpone, extend and fail act on ids and receipts; stale receipts exit 1", async () => {
    const { table, ids } = await tableWith(4);
    const [a, b, c, d] = await deliveries(table, 4);
    expect(await cli(["ack", table, a!.id])).toEqual({ code: 0, out: '{"acked":1,"stale":[]}\n', err: "" });
    expect(await cli(["postpone", table, b!.receipt, "--delay-ms", "60000"])).toMatchObject({
      code: 0,
      out: '{"postponed":1,"stale":[]}\n',
    });
    const extended = await cli(["extend", table, c!.receipt, "--by-ms", "120000"]);
    expect(extended.code).toBe(0);
    expect(JSON.parse(extended.out)).toMatchObject({ extended: 1, stale: [] });
    expect(await cli(["fail", table, d!.receipt, "--reason", "by hand"])).toMatchObject({ code: 0, out: '{"failed":1,"stale":[]}\n' });
    expect((await client.listDead(table)).messages).toMatchObject([{ id: d!.id, reason: "by hand" }]);
    // A receipt of a delivery that is not the current one (epoch 9 was never delivered) changes nothing.
    const stale = `${c!.id}:9`;
    const refused = await cli(["ack", table, stale]);
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.out)).toEqual({ acked: 0, stale: [stale] });
    expect(refused.err).toContain(`stale (delivered again since, left alone): ${stale}`);
    expect(await cli(["extend", table, c!.id, "--by-ms", "1000"])).toMatchObject({ code: 2 });
    expect(await cli(["extend", table, c!.receipt])).toMatchObject({ code: 2 }); // --by-ms is required
    expect((await client.describeTable(table)).stats).toMatchObject({ acked: 1, dead: 1 });
    expect(ids).toContain(c!.id);
  });

  it("peek shows unacked messages by state, pages, and one by id, without delivering them", async () => {
    const { table, ids } = await tableWith(2);
    const [late] = (await client.publish(table, [{ payload: "later", delayMs: 60_000 }])).ids;
    const all = await cli(["peek", table, "-o", "jsonl"]);
    expect(all.code).toBe(0);
    const listed = lines(all.out).map((l) => JSON.parse(l) as { id: string; state: string; epoch: number });
    expect(listed.map((m) => [m.id, m.state])).toEqual([
      [ids[0], "ready"],
      [ids[1], "ready"],
      [late, "delayed"],
    ]);
    expect(lines((await cli(["peek", table, "--state", "delayed"])).out).map((l) => JSON.parse(l).id)).toEqual([late]);
    const paged = await cli(["peek", table, "--limit", "2"]);
    expect(lines(paged.out)).toHaveLength(2);
    expect(paged.err).toMatch(/^more: --cursor \S+\n$/);
    const one = await cli(["peek", table, late!, "-o", "table"]);
    expect(one.out).toMatch(/^state\s+delayed$/m);
    expect(one.out).toMatch(/^due at\s+.*\(in \d+s\)$/m);
    expect((await cli(["peek", table, "123"])).code).toBe(1); // message_not_found
    expect((await cli(["peek", table, "--state", "gone"])).code).toBe(2);
    expect((await client.describeTable(table)).stats).toMatchObject({ ready: 2, delayed: 1, inFlight: 0 });
  });

  it("table alter changes an existing table and refuses a missing one without creating it", async () => {
    const { table } = await tableWith(0);
    const altered = await cli(["table", "alter", table, "--batch-size", "7"]);
    expect(altered.code).toBe(0);
    expect(JSON.parse(altered.out).options.batchSize).toBe(7);
    const typo = `${table}x`;
    const missing = await cli(["table", "alter", typo, "--batch-size", "7"]);
    expect(missing).toMatchObject({ code: 1, err: `error table_not_found: table "${typo}" is not a message table\n` });
    expect((await client.listTables()).map((t) => t.name)).not.toContain(typo);
    expect(await cli(["table", "alter", table])).toMatchObject({
      code: 2,
      err: "error: give at least one option to change (see --help)\n",
    });
  });

  it("table pause and resume stop and start delivery; table purge asks for --yes and names the count", async () => {
    const { table } = await tableWith(3);
    const paused = await cli(["table", "pause", table]);
    expect(paused.code).toBe(0);
    expect(JSON.parse(paused.out).options.paused).toBe(true);
    expect((await cli(["table", "describe", table, "-o", "table"])).out).toMatch(/^delivery\s+paused$/m);
    expect(JSON.parse((await cli(["table", "resume", table])).out).options.paused).toBe(false);
    const unsure = await cli(["table", "purge", table]);
    expect(unsure.code).toBe(2); // as any other missing flag
    expect(unsure.err).toMatch(/3 unacked messages of \S+ would be deleted: add --yes to purge/);
    expect((await client.describeTable(table)).stats.ready).toBe(3);
    const purged = await cli(["table", "purge", table, "--yes"]);
    expect(purged.code).toBe(0);
    expect(JSON.parse(purged.out)).toEqual({ name: table, purged: 3 });
    expect((await cli(["table", "pause", `${table}x`])).code).toBe(1);
  });

  it("table list shows a page, says where the next begins, and follows every page with --all", async () => {
    const made = [uniqueTableName("ls"), uniqueTableName("ls"), uniqueTableName("ls")].sort();
    for (const name of made) await client.createTable(name);
    const ours = (out: string) =>
      lines(out)
        .map((l) => (JSON.parse(l) as { name: string }).name)
        .filter((n) => made.includes(n));
    const before = made[0]!.slice(0, -1); // sorts just before the three
    const page = await cli(["table", "list", "--limit", "2", "--cursor", before]);
    expect(page.code).toBe(0);
    expect(ours(page.out)).toEqual(made.slice(0, 2));
    expect(page.err).toBe(`more: --cursor ${made[1]}\n`);
    const all = await cli(["table", "list", "--limit", "2", "--cursor", before, "--all"]);
    expect(ours(all.out)).toEqual(made);
    expect(all.err).toBe("");
  });

  it("webhook get shows one webhook, never its secret", async () => {
    const { table } = await tableWith(0);
    await client.putWebhook(table, "audit", { url: "http://127.0.0.1:9/hook", secret: "s3cr3t-value" });
    const got = await cli(["webhook", "get", table, "audit"]);
    expect(got.code).toBe(0);
    expect(JSON.parse(got.out)).toMatchObject({ name: "audit", url: "http://127.0.0.1:9/hook", hasSecret: true });
    const text = await cli(["webhook", "get", table, "audit", "-o", "table"]);
    expect(text.out).toMatch(/^signed\s+yes$/m);
    for (const out of [got.out, text.out]) expect(out).not.toContain("s3cr3t-value");
    expect(await cli(["webhook", "get", table, "nope"])).toMatchObject({ code: 1, err: expect.stringMatching(/^error webhook_not_found/) });
  });

  it("exit codes: bad input is 2 whoever finds it; dlq redrive of missing ids is 1 and says which", async () => {
    const { table } = await tableWith(0);
    expect((await cli(["send", "Bad-Name", "1"])).code).toBe(2); // the server refuses the name
    expect((await cli(["stats", "Bad-Name"])).code).toBe(2);
    expect((await cli(["send", table, "--priority", "300", "1"])).code).toBe(2); // the CLI refuses the flag
    const redrive = await cli(["dlq", "redrive", table, "123", "456"]);
    expect(redrive.code).toBe(1);
    expect(JSON.parse(redrive.out)).toEqual({ redriven: 0, missing: ["123", "456"], conflicts: [] });
    expect(redrive.err).toBe(`error: 0 redriven; not dead letters of ${table}: 123, 456\n`);
  });

  it("tail stopped by SIGINT closes its subscription and exits 0", async () => {
    const { table } = await tableWith(5);
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "tail", table, "--max-in-flight", "5"], {
      env: { ...process.env, TABLEMQ_URL: server.url },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let err = "";
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    const printed: string[] = [];
    createInterface({ input: child.stdout }).on("line", (l) => printed.push(l));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      await waitUntil(() => printed.length === 5, `tail to print 5 messages (stderr: ${err})`, 15_000);
      child.kill("SIGINT");
      expect(await exited).toBe(0);
      expect(err).toBe("");
      expect(printed.map((l) => (JSON.parse(l) as { epoch: number }).epoch)).toEqual([0, 0, 0, 0, 0]);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});
