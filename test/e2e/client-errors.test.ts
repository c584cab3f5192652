/**
 * Issue 31's third bug: errors disappeared without listeners. A worker whose table was dropped exited with
 * code 0 and printed nothing, and its handler's errors were swallowed the same way. Now, with no "error"
 * listener and no onError, an error is a process warning, and one that ends the subscription sets exit
 * code 1. The worker is a child process (test/support/worker-process.ts) against the real server.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { describeEachStore, uniqueTableName } from "../support/database.js";
import { http, useTestServer } from "../support/server.js";
import { waitUntil } from "../support/wait.js";

const WORKER = fileURLToPath(new URL("../support/worker-process.ts", import.meta.url));

describeEachStore("client errors without listeners", (kind) => {
  const t = useTestServer("client_errors", {}, kind);

  it("a worker whose handler fails and whose table is dropped says so and exits 1", async () => {
    const table = uniqueTableName("errs");
    expect((await http(t.base, "PUT", `/v1/tables/${table}`, {})).status).toBe(201);
    const child = spawn(process.execPath, ["--import", "tsx", WORKER, t.base, table], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d.toString()));
    child.stderr.on("data", (d) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      await waitUntil(() => out.includes("ready"), "the worker to subscribe", 15_000);
      await http(t.base, "POST", `/v1/tables/${table}/messages`, { messages: [{ payload: "boom" }] });
      await waitUntil(() => err.includes("the handler failed"), "the handler's error on stderr", 5_000);
      expect((await http(t.base, "DELETE", `/v1/tables/${table}`)).status).toBe(200);
      expect(await exited).toBe(1);
      expect(err).toMatch(/TABLEMQ_SUBSCRIPTION_FAILED|table_not_found/);
    } finally {
      child.kill("SIGKILL");
    }
  }, 30_000);
});
