/**
 * Issue 28: the README's quick start on a machine with nothing but Node. The server is started as
 * `npm start` starts it (package.json's start script), with no TABLEMQ_DATABASE_URL, in an empty directory:
 * it makes the embedded SQLite store in ./data there. Then the README's quick-start commands run as
 * written (in the repository, with TABLEMQ_URL pointing at this server), and the last one prints what the
 * README shows. A second server on the same directory is refused with the reason.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, expect, it } from "vitest";
import { describe } from "vitest";
import { waitUntil } from "../support/wait.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);

/** The README's quick-start code blocks, in order. */
function quickStartBlocks(): string[][] {
  const readme = readFileSync(join(REPO, "README.md"), "utf8");
  const section = readme.split("\n## Quick start\n")[1]!.split("\n## ")[0]!;
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!.trimEnd().split("\n"));
}

/** package.json's start script as a command that runs from any directory. */
function startCommand(): string {
  const { scripts } = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { scripts: Record<string, string> };
  const tsx = import.meta.resolve("tsx");
  return scripts.start!.replace("--import tsx", `--import ${tsx}`).replace("src/cli/main.ts", join(REPO, "src/cli/main.ts"));
}

function serve(cwd: string): { child: ChildProcess; stderr: () => string; exited: Promise<number | null> } {
  const env: NodeJS.ProcessEnv = { ...process.env, TABLEMQ_PORT: "0" };
  delete env.TABLEMQ_DATABASE_URL;
  const child = spawn("sh", ["-c", startCommand()], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  let out = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, stderr: () => err + out, exited };
}

describe("the README's quick start, with no database configured", () => {
  const dir = mkdtempSync(join(tmpdir(), "tablemq-quick-start-"));
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  it("starts on the embedded store in ./data, runs the README's commands as written, and refuses a second server", async () => {
    const [setup, commands] = quickStartBlocks();
    expect(setup).toEqual(["npm ci", "npm start            # tablemq serve: listens on http://127.0.0.1:8080"]);

    const server = serve(dir);
    children.push(server.child);
    await waitUntil(() => /listening on http\S+/.test(server.stderr()), `the server to listen: ${server.stderr()}`, 30_000);
    const url = /listening on (http\S+)/.exec(server.stderr())![1]!;
    const file = join(dir, "data", "tablemq.db");
    expect(existsSync(file)).toBe(true);
    expect(server.stderr()).toContain(`embedded SQLite store at ${file}`);
    expect(server.stderr()).toContain("TABLEMQ_DATABASE_URL=mysql://");

    // The README's commands, one by one, with the output the README shows after the last.
    const lines = commands!.filter((l) => !l.startsWith("#"));
    const shown = commands!.filter((l) => l.startsWith("# ")).map((l) => JSON.parse(l.slice(2)) as Record<string, unknown>);
    let out = "";
    for (const line of lines) {
      ({ stdout: out } = await run("sh", ["-c", line], { cwd: REPO, env: { ...process.env, TABLEMQ_URL: url }, timeout: 30_000 }));
    }
    const got = JSON.parse(out.trim()) as Record<string, unknown>;
    expect(Object.keys(got)).toEqual(Object.keys(shown[0]!));
    expect({ ...got, id: "" }).toEqual({ ...shown[0], id: "" });

    // A second server on the same directory is refused, and says why.
    const second = serve(dir);
    children.push(second.child);
    expect(await second.exited).toBe(1);
    expect(second.stderr()).toContain("is in use by another process");

    server.child.kill("SIGTERM");
    expect(await server.exited).toBe(0);
  }, 90_000);
});
