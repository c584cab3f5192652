/**
 * Issue 24: the package as a user gets it. `npm pack` on this checkout (prepack builds dist/), the tarball
 * installed in a scratch project, and its `tablemq` command run there: --help, a send and a tail against a
 * real server. Also: the files a user needs are in the tarball (LICENSE, dist, the sources its source maps
 * name), and a map's sources resolve inside the installed package. Slow (a build and an install), so it
 * runs as `npm run test:pack` (and in .ci/run), not in `npm test`.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { loadConfig } from "../../src/server/config.js";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { describeWithDatabase, uniqueTableName, useOwnDatabase } from "../support/database.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../..", import.meta.url));

describeWithDatabase("the packed package", () => {
  const database = useOwnDatabase("pack");
  const scratch = mkdtempSync(join(tmpdir(), "tablemq-pack-"));
  let server: RunningServer;
  let tarball: string;
  let installed: string;

  beforeAll(async () => {
    server = await startServer(loadConfig({}, { port: 0, databaseUrl: database.url, logLevel: "silent" }));
    const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", scratch], { cwd: ROOT, maxBuffer: 64 << 20 });
    tarball = join(scratch, (JSON.parse(stdout) as Array<{ filename: string }>)[0]!.filename);
    const project = join(scratch, "app");
    await run("mkdir", ["-p", project]);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", private: true, type: "module" }));
    // --ignore-scripts: the one install script is better-sqlite3's native build, which `npm ci` made (and the
    // tests used) from the same lock, and which takes ~75 s here. The commands run below must not need it: the
    // client commands do not load a store.
    await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--ignore-scripts", tarball], {
      cwd: project,
      maxBuffer: 64 << 20,
    });
    installed = join(project, "node_modules", "tablemq");
  }, 300_000);
  afterAll(async () => {
    await server?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  const tablemq = (args: string[]) =>
    run(join(installed, "..", ".bin", "tablemq"), [...args, "--url", server.url], { env: { ...process.env, TABLEMQ_URL: "" } });

  it("ships LICENSE, the build, and the sources its source maps name", async () => {
    const { stdout } = await run("tar", ["-tzf", tarball]);
    const files = stdout.split("\n");
    for (const f of [
      "package/LICENSE",
      "package/README.md",
      "package/dist/index.js",
      "package/dist/cli/main.js",
      "package/src/cli/main.ts",
    ]) {
      expect(files, f).toContain(f);
    }
    const map = join(installed, "dist/cli/main.js.map");
    const { sources } = JSON.parse(readFileSync(map, "utf8")) as { sources: string[] };
    expect(sources.length).toBeGreaterThan(0);
    for (const s of sources) expect(existsSync(resolve(dirname(map), s)), s).toBe(true);
    expect(JSON.parse(readFileSync(join(installed, "package.json"), "utf8")).license).toBe("Apache-2.0");
  });

  it("exports tablemq/sql: a message enqueued with it in a transaction of the installed mysql2, delivered after the wake", async () => {
    const table = uniqueTableName("pack_sql");
    await tablemq(["table", "create", table]);
    const script = join(installed, "..", "..", "sql-check.mjs");
    writeFileSync(
      script,
      `import { createConnection } from "mysql2/promise";
import { enqueue, HttpNotifier } from "tablemq/sql";
import { TablemqClient } from "tablemq/client";
const conn = await createConnection(process.env.DATABASE_URL);
await conn.beginTransaction();
const sent = await enqueue(conn, process.env.TABLE, [{ payload: { from: "tablemq/sql" } }]);
await conn.commit();
await conn.end();
const client = new TablemqClient({ url: process.env.TABLEMQ_URL });
const sub = client.subscribe(process.env.TABLE);
console.log(await new HttpNotifier(client).notify(sent));
for await (const msg of sub) {
  msg.ack();
  console.log(JSON.stringify(msg.payload));
  break;
}
await sub.close();
`,
    );
    const { stdout } = await run(process.execPath, [script], {
      cwd: dirname(script),
      timeout: 30_000,
      env: { ...process.env, DATABASE_URL: database.url, TABLE: table, TABLEMQ_URL: server.url },
    });
    expect(stdout.trim().split("\n")).toEqual(["true", '{"from":"tablemq/sql"}']);
  });

  it("serves the dashboard from the installed package: the page and the libraries it imports", async () => {
    const child = spawn(
      join(installed, "..", ".bin", "tablemq"),
      ["serve", "--port", "0", "--database-url", database.url, "--log-level", "warn"],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    try {
      const url = await new Promise<string>((found, failed) => {
        let out = "";
        // Its URL on stderr ("tablemq listening on ..."); its log lines on stdout.
        const read = (chunk: Buffer) => {
          out += chunk.toString();
          const m = /listening on (http:\/\/\S+)/.exec(out);
          if (m) found(m[1]!);
        };
        child.stdout.on("data", read);
        child.stderr.on("data", read);
        child.once("exit", (code) => failed(new Error(`tablemq serve exited (${code}) before listening: ${out}`)));
        setTimeout(() => failed(new Error(`tablemq serve did not listen within 30 s: ${out}`)), 30_000).unref();
      });
      const page = await fetch(`${url}/ui/`);
      expect(page.status).toBe(200);
      const html = await page.text();
      const vendored = [...html.matchAll(/"\.\/(vendor\/[^"]+)"/g)].map((m) => m[1]!);
      expect(vendored.length).toBeGreaterThanOrEqual(4);
      for (const path of [...vendored, "app.js", "style.css"]) expect((await fetch(`${url}/ui/${path}`)).status, path).toBe(200);
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    }
  });

  it("runs its tablemq command: --help, then a send and a tail against a server", async () => {
    const help = await run(join(installed, "..", ".bin", "tablemq"), ["--help"]);
    expect(help.stdout).toMatch(/^Usage: tablemq/);
    const table = uniqueTableName("pack");
    await tablemq(["table", "create", table]);
    const sent = await tablemq(["send", table, '{"from":"the tarball"}']);
    const [id] = sent.stdout
      .trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as { id: string }).id);
    const tail = await tablemq(["tail", table, "--count", "1", "--ack"]);
    expect(JSON.parse(tail.stdout)).toMatchObject({ id, payload: { from: "the tarball" }, epoch: 0 });
  });
});
