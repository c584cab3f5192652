import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { serverUrls, TABLE_OPTION_FLAGS, tableOptionsFromFlags, wholeNumber } from "../../../src/cli/flags.js";
import { CliError } from "../../../src/cli/io.js";
import { run } from "../../../src/cli/program.js";
import { configFromFlags } from "../../../src/cli/serve.js";
import { formatDuration, formatTable, formatTime } from "../../../src/cli/output.js";
import { TABLE_COLUMNS } from "../../../src/cli/table.js";
import { DEFAULT_OPTIONS } from "../../../src/options.js";
import { SETTINGS } from "../../../src/server/config.js";
import { captureIo } from "../../support/cli-io.js";

const io = (env: NodeJS.ProcessEnv = {}) => captureIo(env);

describe("wholeNumber", () => {
  it("accepts whole numbers in range and rejects the rest", () => {
    const p = wholeNumber(0, 255);
    expect(p("0")).toBe(0);
    expect(p(" 255 ")).toBe(255);
    for (const bad of ["256", "-1", "1.5", "abc", "", "1e3"]) expect(() => p(bad)).toThrow(/whole number from 0 to 255/);
  });
});

describe("serverUrls", () => {
  it("reads one URL, or several separated by commas, blanks around them dropped", () => {
    expect(serverUrls("http://127.0.0.1:8080")).toEqual(["http://127.0.0.1:8080"]);
    expect(serverUrls(" http://mq-1:8080 , http://mq-2:8080/,")).toEqual(["http://mq-1:8080", "http://mq-2:8080/"]);
    expect(serverUrls(" , ")).toEqual([]);
  });
});

describe("table option flags", () => {
  it("cover every table option but paused (tablemq table pause / resume)", () => {
    const numeric = Object.keys(DEFAULT_OPTIONS).filter((k) => k !== "paused");
    expect(TABLE_OPTION_FLAGS.map((f) => f.key).sort()).toEqual(numeric.sort());
  });

  it("map flags to options, leaving out the ones not given", () => {
    expect(tableOptionsFromFlags({ ackWaitMs: 500, pollIntervalMs: 200, json: true, batchSize: undefined })).toEqual({
      ackWaitMs: 500,
      pollIntervalMs: 200,
    });
    expect(tableOptionsFromFlags({})).toEqual({});
  });

  it("are parsed by `table create` (a bad value is a usage error naming the flag)", async () => {
    const t = io();
    expect(await run(["table", "create", "t1", "--ack-wait-ms", "0"], t.io)).toBe(2);
    expect(t.err()).toContain("option '--ack-wait-ms <n>' argument '0' is invalid. expected a whole number >= 1.");
    expect(t.out()).toBe("");
  });
});

describe("serve flags", () => {
  it("map onto the server settings over the environment", () => {
    const config = configFromFlags(
      { port: "0", logLevel: "silent", databaseUrl: "mysql://u@db:3306/q" },
      { TABLEMQ_PORT: "9000", TABLEMQ_MAX_BATCH: "50" },
    );
    expect(config).toMatchObject({ port: 0, logLevel: "silent", databaseUrl: "mysql://u@db:3306/q", maxBatch: 50 });
  });

  it("turn a bad value into a usage error naming the flag", () => {
    const err = (() => {
      try {
        configFromFlags({ port: "http" }, {});
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(CliError);
    expect(err).toMatchObject({ exitCode: 2, message: '--port must be a whole number >= 0, got "http"' });
  });

  it("`serve` exits 2 with the message for a bad flag or variable", async () => {
    const t = io({ TABLEMQ_LOG_LEVEL: "loud" });
    expect(await run(["serve", "--port", "0"], t.io)).toBe(2);
    expect(t.err()).toBe('error: TABLEMQ_LOG_LEVEL must be one of fatal|error|warn|info|debug|trace|silent, got "loud"\n');
  });

  it("`serve --help` lists every setting with its variable", async () => {
    const t = io();
    expect(await run(["serve", "--help"], t.io)).toBe(0);
    const help = t.out().replace(/\s+/g, " ");
    for (const s of SETTINGS) {
      expect(help).toContain(s.flag);
      expect(help).toContain(s.env);
    }
  });
});

describe("the CLI without a server", () => {
  it("reports an unreachable server as `error unavailable: ...` with exit 1", async () => {
    const t = io({ TABLEMQ_URL: "http://127.0.0.1:9" });
    expect(await run(["table", "list"], t.io)).toBe(1);
    expect(t.err()).toMatch(/^error unavailable: GET \/v1\/tables\?limit=100: cannot reach the server/);
  });

  it("refuses a payload argument that is not JSON before sending anything", async () => {
    const t = io({ TABLEMQ_URL: "http://127.0.0.1:9" });
    expect(await run(["send", "t", "1", "{x"], t.io)).toBe(2);
    expect(t.err()).toMatch(/^error: argument 2 is not JSON/);
  });

  it("refuses an unknown option", async () => {
    const t = io();
    expect(await run(["tail", "t", "--acks"], t.io)).toBe(2);
    expect(t.err()).toContain("unknown option '--acks'");
  });
});

describe("the token", () => {
  it("comes from --token or TABLEMQ_TOKEN, is sent as a bearer token, and is not printed by --help", async () => {
    const seen: Array<string | undefined> = [];
    const server = createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(200, { "content-type": "application/json" }).end('{"tables":[]}');
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const env = { TABLEMQ_URL: url, TABLEMQ_TOKEN: "from-env" };
      expect(await run(["table", "list", "--json"], io(env).io)).toBe(0);
      expect(await run(["table", "list", "--token", "from-flag"], io(env).io)).toBe(0);
      expect(await run(["table", "list"], io({ TABLEMQ_URL: url }).io)).toBe(0);
      expect(seen).toEqual(["Bearer from-env", "Bearer from-flag", undefined]);
      const help = io(env);
      await run(["--help"], help.io);
      expect(help.out()).not.toContain("from-env");
    } finally {
      server.close();
    }
  });
});

describe("table output", () => {
  it("aligns names left and counts right", () => {
    const d = (name: string, ready: number) => ({
      name,
      options: { ...DEFAULT_OPTIONS },
      stats: { ready, delayed: 0, inFlight: 2, acked: 10, dead: 3, receivers: 1, cached: 0 },
    });
    expect(formatTable(TABLE_COLUMNS, [d("orders", 5), d("a", 1234)])).toBe(
      [
        "TABLE   READY  DELAYED  IN_FLIGHT  ACKED  DEAD  RECEIVERS  CACHED",
        "orders      5        0          2     10     3          1       0",
        "a        1234        0          2     10     3          1       0",
        "",
      ].join("\n"),
    );
    expect(formatTable(TABLE_COLUMNS, [])).toBe("(none)\n");
  });

  it("shows durations with their two largest units, and times in UTC with their age", () => {
    expect([250, 30_000, 90_000, 3_600_000, 7_500_000, 86_400_000 + 4 * 3_600_000].map(formatDuration)).toEqual([
      "250ms",
      "30s",
      "1m30s",
      "1h",
      "2h5m",
      "1d4h",
    ]);
    const at = Date.UTC(2026, 11, 7, 8, 41, 2);
    expect(formatTime(at, at + 180_000)).toBe("2026-12-07 08:41:02Z (3m ago)");
    expect(formatTime(at, at - 30_000)).toBe("2026-12-07 08:41:02Z (in 30s)");
    expect(formatTime(null)).toBe("-");
  });
});
