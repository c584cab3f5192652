/** The CLI against the real server and database: in-process through run(), and `serve` as a process. */
import { readFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { afterAll, beforeAll, expect, it } from "vitest";
import { run } from "../../src/cli/main.js";
import { loadConfig } from "../../src/server/config.js";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { captureIo } from "../support/cli-io.js";
import { describeEachStore, uniqueTableName, useOwnStoreDatabase } from "../support/database.js";
import { waitUntil } from "../support/wait.js";

interface CliResult {
  code: number;
  out: string;
  err: string;
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

describeEachStore("CLI end to end", (kind) => {
  const database = useOwnStoreDatabase(kind, "cli_e2e");
  let server: RunningServer;

  beforeAll(async () => {
    server = await startServer(loadConfig({}, { port: 0, databaseUrl: database.url, logLevel: "silent" }));
  });
  afterAll(async () => {
    await server?.close();
  });

  /** Runs the CLI in-process with TABLEMQ_URL pointing at the test server. */
  async function cli(args: string[], stdin = "", timeoutMs = 10_000): Promise<CliResult> {
    const t = captureIo({ TABLEMQ_URL: server.url }, stdin);
    const code = await within(run(args, t.io), timeoutMs, `tablemq ${args.join(" ")}`);
    return { code, out: t.out(), err: t.err() };
  }

  const lines = (text: string) => text.split("\n").filter((l) => l !== "");

  async function createTable(): Promise<string> {
    const table = uniqueTableName("cli");
    const res = await cli(["table", "create", table, "--ack-wait-ms", "800", "--poll-interval-ms", "200", "--json"]);
    expect(res).toMatchObject({ code: 0, err: `created table ${table}\n` });
    return table;
  }

  it("--version prints the package's version and exits 0", async () => {
    const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
    for (const flag of ["--version", "-V"]) expect(await cli([flag])).toEqual({ code: 0, out: `${version}\n`, err: "" });
  });

  it("table create prints the description, with the options from the flags", async () => {
    const table = uniqueTableName("cli");
    const res = await cli([
      "table",
      "create",
      table,
      "--ack-wait-ms",
      "900",
      "--batch-size",
      "3",
      "--max-backoff-ms",
      "5000",
      "-o",
      "json",
    ]);
    expect(res.code).toBe(0);
    expect(res.out).toContain("\n  "); // pretty with -o json
    expect(JSON.parse(res.out)).toMatchObject({
      name: table,
      options: { ackWaitMs: 900, minBackoffMs: 900, batchSize: 3, maxBackoffMs: 5000 },
    });

    const again = await cli(["table", "create", table, "--batch-size", "4", "--json"]);
    expect(again.code).toBe(0);
    expect(again.err).toContain("exists");
    expect(lines(again.out)).toHaveLength(1); // compact: --json is -o jsonl
    expect(JSON.parse(again.out).options).toMatchObject({ ackWaitMs: 900, batchSize: 4 });

    const list = await cli(["table", "list", "-o", "json"]);
    expect((JSON.parse(list.out) as Array<{ name: string }>).map((t) => t.name)).toContain(table);
    const described = await cli(["table", "describe", table]);
    expect(JSON.parse(described.out)).toMatchObject({ name: table, stats: { ready: 0 } });
    expect(await cli(["table", "drop", table, "--json"])).toMatchObject({ code: 0, out: `{"name":"${table}","dropped":true}\n` });
    expect(await cli(["table", "describe", table])).toMatchObject({
      code: 1,
      err: `error table_not_found: table "${table}" is not a message table\n`,
    });
  });

  it("send (arguments and stdin) then tail --ack --count prints every payload and acks them", async () => {
    const table = await createTable();
    const fromArgs = await cli(["send", table, '{"n":1}', '"two"', "3"]);
    expect(fromArgs.code).toBe(0);
    expect(lines(fromArgs.out)).toHaveLength(3);
    const fromStdin = await cli(["send", table, "--priority", "10"], '{"n":4}\n\n  \n[5]\n');
    expect(fromStdin.code).toBe(0);
    // Not a terminal: JSON lines, {"id"} each.
    const ids = [...lines(fromArgs.out), ...lines(fromStdin.out)].map((l) => (JSON.parse(l) as { id: string }).id);
    expect(ids).toHaveLength(5);
    for (const id of ids) expect(id).toMatch(/^\d+$/);

    const tail = await cli(["tail", table, "--ack", "--count", "5"]);
    expect(tail).toMatchObject({ code: 0, err: "" });
    const printed = lines(tail.out).map((l) => JSON.parse(l) as { id: string; priority: number; epoch: number; payload: unknown });
    expect(printed).toHaveLength(5);
    expect(printed.map((m) => m.id).sort()).toEqual([...ids].sort());
    // Priority 10 is delivered before 50.
    expect(printed.slice(0, 2).map((m) => m.payload)).toEqual([{ n: 4 }, [5]]);
    expect(printed.slice(2).map((m) => m.payload)).toEqual([{ n: 1 }, "two", 3]);
    expect(printed.every((m) => m.epoch === 0)).toBe(true);
    expect(Object.keys(printed[0]!)).toEqual(["id", "priority", "epoch", "payload"]);

    // tail's acks went as WebSocket frames, which the server answers with nothing: the socket took them when
    // tail exits, and the server commits them a moment later (README, the client's acks over the socket).
    const acked = async () => JSON.parse((await cli(["stats", table, "--json"])).out).stats.acked === 5;
    await waitUntil(acked, "the acks of tail --ack to be committed");
    const stats = await cli(["stats", table, "--json"]);
    expect(JSON.parse(stats.out).stats).toMatchObject({ ready: 0, acked: 5 });
    const text = await cli(["stats", "-o", "table"]);
    expect(text.out).toMatch(/^TABLE\s+READY\s+DELAYED\s+IN_FLIGHT\s+ACKED\s+DEAD\s+RECEIVERS\s+CACHED\n/);
    expect(text.out).toMatch(new RegExp(`\\n${table}\\s+0\\s+0\\s+0\\s+5\\s+0\\s`));
  });

  it("tail without --ack leaves messages to be redelivered", async () => {
    const table = await createTable();
    await cli(["send", table, '"x"']);
    const first = await cli(["tail", table, "--count", "1"]);
    expect(JSON.parse(first.out)).toMatchObject({ payload: "x", epoch: 0 });
    const second = await cli(["tail", table, "--count", "1", "--ack"]);
    expect(JSON.parse(second.out)).toMatchObject({ payload: "x" });
    expect(JSON.parse(second.out).epoch).toBeGreaterThanOrEqual(1);
  });

  it("send from stdin sends in batches; a line that is not JSON stops it and nothing of its batch is sent", async () => {
    const table = await createTable();
    const res = await cli(["send", table, "--batch", "2"], "1\n2\n3\nnot json\n5\n");
    expect(res.code).toBe(2);
    expect(lines(res.out)).toHaveLength(2); // the first batch only
    expect(res.err).toMatch(/^error: line 4 is not JSON/);
    const stats = await cli(["stats", table, "--json"]);
    expect(JSON.parse(stats.out).stats.ready).toBe(2);
  });

  it("a bad flag value is a clear usage error and sends nothing", async () => {
    const table = await createTable();
    const res = await cli(["send", table, "--priority", "300", "1"]);
    expect(res.code).toBe(2);
    expect(res.err).toContain("option '--priority <n>' argument '300' is invalid. expected a whole number from 0 to 255.");
    const delay = await cli(["send", table, "--delay-ms", "soon", "1"]);
    expect(delay.code).toBe(2);
    expect(delay.err).toContain("option '--delay-ms <ms>' argument 'soon' is invalid");
    expect(JSON.parse((await cli(["stats", table, "--json"])).out).stats.ready).toBe(0);
  });

  it("webhook put, list and delete; the secret comes from an environment variable and is never printed", async () => {
    const table = await createTable();
    const secret = "cli-secret-5e1d";
    const t = captureIo({ TABLEMQ_URL: server.url, HOOK_SECRET: secret });
    const args = [
      "webhook",
      "put",
      table,
      "audit",
      "http://127.0.0.1:9/hook",
      "--batch-size",
      "4",
      "--post-timeout-ms",
      "2500",
      "--secret-env",
      "HOOK_SECRET",
      "--json",
    ];
    expect(await run(args, t.io)).toBe(0);
    expect(t.err()).toBe(`created webhook audit on ${table}\n`);
    expect(JSON.parse(t.out())).toMatchObject({
      name: "audit",
      url: "http://127.0.0.1:9/hook",
      batchSize: 4,
      timeoutMs: 2500,
      hasSecret: true,
    });
    const list = await cli(["webhook", "list", table, "-o", "json"]);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.out) as Array<{ name: string }>).map((w) => w.name)).toEqual(["audit"]);
    for (const text of [t.out(), list.out]) expect(text).not.toContain(secret);
    expect(await cli(["webhook", "put", table, "audit", "ftp://x/"])).toMatchObject({
      code: 2, // bad input, whoever finds it
      err: expect.stringMatching(/^error validation_failed: url: /),
    });
    expect(await cli(["webhook", "put", table, "audit", "http://x/", "--secret-env", "NOT_SET"])).toMatchObject({
      code: 2,
      err: "error: --secret-env: NOT_SET is not set or empty\n",
    });
    expect(await cli(["webhook", "delete", table, "audit", "--json"])).toMatchObject({
      code: 0,
      out: `{"table":"${table}","name":"audit","deleted":true}\n`,
    });
    expect(await cli(["webhook", "delete", table, "audit"])).toMatchObject({
      code: 1,
      err: `error webhook_not_found: table "${table}" has no webhook "audit"\n`,
    });
  });

  it("server errors print `error <code>: <message>` and exit 1; bad input exits 2 whoever finds it", async () => {
    const missing = uniqueTableName("missing");
    expect(await cli(["send", missing, "1"])).toMatchObject({
      code: 1,
      err: `error table_not_found: table "${missing}" is not a message table\n`,
    });
    const tail = await cli(["tail", missing, "--count", "1"]);
    expect(tail.code).toBe(1);
    expect(tail.err).toMatch(/^error table_not_found: /);
    const bad = await cli(["table", "create", "Bad-Name"]);
    expect(bad.code).toBe(2); // bad input: the server found it, the code is the CLI's own
    expect(bad.err).toMatch(/^error validation_failed: /);
  });

  it("serve runs as a process: its URL on stderr, only JSON log lines on stdout, a clean stop on SIGTERM", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "serve", "--port", "0", "--log-level", "info"], {
      env: { ...process.env, TABLEMQ_DATABASE_URL: database.apart("serve") },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let err = "";
    let out = "";
    child.stdout.on("data", (c) => (out += c));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      const url = await within(
        new Promise<string>((resolve, reject) => {
          child.stderr.on("data", (c) => {
            err += c;
            const m = /^tablemq listening on (http:\/\/\S+)$/m.exec(err);
            if (m) resolve(m[1]!);
          });
          void exited.then((code) => reject(new Error(`serve exited with ${code}: ${err}`)));
        }),
        15_000,
        "the server URL",
      );
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      child.kill("SIGTERM");
      expect(await within(exited, 10_000, "serve to exit")).toBe(0);
      const logs = lines(out).map((l) => JSON.parse(l) as { msg?: string; signal?: string });
      expect(logs.map((l) => l.msg)).toEqual(expect.arrayContaining(["tablemq listening", "shutting down", "tablemq stopped"]));
      expect(logs.find((l) => l.msg === "shutting down")?.signal).toBe("SIGTERM");
      expect(logs.map((l) => l.msg)).not.toContain("request completed"); // at info a request logs nothing
      expect(err).toBe(`tablemq listening on ${url}\n`); // the one human line; nothing else on stderr
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  it("serve with a bad setting exits 2 naming it", async () => {
    const res = await cli(["serve", "--port", "70000"]);
    expect(res).toMatchObject({ code: 2, err: "error: --port must be at most 65535, got 70000\n" });
  });
});
