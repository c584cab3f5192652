/**
 * Issue 31: the README's worker example is run as written (only its import points at this checkout), as a
 * child process against a real server: it ships the order with a sku, dead-letters the one without, and
 * exits 0 on SIGTERM once its worker has closed.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, expect, it } from "vitest";
import { TablemqClient } from "../../src/client/client.js";
import { describeEachStore } from "../support/database.js";
import { useTestServer } from "../support/server.js";
import { waitUntil } from "../support/wait.js";

const README = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
const CLIENT = fileURLToPath(new URL("../../src/client/index.ts", import.meta.url));

/** The first ```ts block after the given heading. */
function exampleAfter(heading: string): string {
  const at = README.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`README has no "${heading}" section`);
  const block = /```ts\n([\s\S]*?)```/.exec(README.slice(at));
  if (!block) throw new Error(`no ts example under "${heading}"`);
  return block[1]!;
}

describeEachStore("the README's worker example", (kind) => {
  const t = useTestServer("readme_worker", {}, kind);
  const dir = mkdtempSync(join(tmpdir(), "tablemq-readme-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("runs: one order shipped and acked, one dead-lettered at once, exit 0 on SIGTERM", async () => {
    const code = exampleAfter("### Workers");
    expect(code).toContain('from "tablemq/client"');
    const file = join(dir, "worker.mts");
    writeFileSync(file, code.replace('from "tablemq/client"', `from ${JSON.stringify(CLIENT)}`));
    const child = spawn(process.execPath, ["--import", "tsx", file], {
      env: { ...process.env, TABLEMQ_URL: t.base },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
    try {
      const client = new TablemqClient({ url: t.base });
      await waitUntil(
        async () => {
          const stats = await client.describeTable("orders").then(
            (d) => d.stats,
            () => undefined,
          );
          return stats?.acked === 1 && stats.dead === 1;
        },
        `one order acked and one dead (stdout ${stdout}, stderr ${stderr})`,
        15_000,
      );
      expect(stdout).toContain("shipped order 1");
      const dead = await client.listDead("orders");
      expect(dead.messages).toMatchObject([{ payload: { id: 2 }, reason: "order without a sku" }]);
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      expect(stderr).toBe("");
    } finally {
      child.kill("SIGKILL");
    }
  });
});
