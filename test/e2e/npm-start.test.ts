/**
 * Issue 24: `kill <pid of npm>` after `npm start` used to kill npm and its shell and leave the server running,
 * orphaned, holding its port: npm forwards SIGTERM to its child, which was `sh -c "node ..."`, and the shell
 * does not pass it on. The start script now `exec`s node, so the server is npm's child and gets the signal.
 */
import { spawn } from "node:child_process";
import { expect, it } from "vitest";
import { describeWithDatabase, useOwnDatabase } from "../support/database.js";
import { waitUntil } from "../support/wait.js";

describeWithDatabase("npm start", () => {
  const database = useOwnDatabase("npm_start");

  it("stops the server when npm gets SIGTERM", async () => {
    const npm = spawn("npm", ["start", "--silent"], {
      cwd: new URL("../..", import.meta.url),
      env: { ...process.env, TABLEMQ_DATABASE_URL: database.url, TABLEMQ_PORT: "0", TABLEMQ_LOG_LEVEL: "warn" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let err = "";
    npm.stderr.on("data", (d: Buffer) => (err += d.toString()));
    npm.stdout.resume();
    const npmExited = new Promise<number | null>((resolve) => npm.once("exit", (code) => resolve(code)));
    try {
      await waitUntil(() => /listening on http/.test(err), `the server to listen (stderr: ${err})`, 30_000);
      const url = /listening on (http\S+)/.exec(err)![1]!;
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      npm.kill("SIGTERM");
      await npmExited;
      // The server went with it: nothing answers on its port.
      await waitUntil(
        () =>
          fetch(`${url}/healthz`).then(
            () => false,
            () => true,
          ),
        "the server to stop",
        10_000,
      );
    } finally {
      if (npm.exitCode === null) npm.kill("SIGKILL");
    }
  });
});
