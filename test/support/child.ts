import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const SERVE = fileURLToPath(new URL("./serve-process.ts", import.meta.url));

export interface ServerProcess {
  url: string;
  child: ChildProcess;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
  stderr: () => string;
}

/** Starts the server as a child process (tsx) with TABLEMQ_* settings; resolves once it listens. */
export async function spawnServer(env: Record<string, string>): Promise<ServerProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", SERVE], {
    env: { ...process.env, TABLEMQ_HOST: "127.0.0.1", TABLEMQ_PORT: "0", TABLEMQ_LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  child.stderr!.on("data", (d) => (err += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.on("exit", (code, signal) => resolve(code ?? signal ?? -1)));
  let startTimer: NodeJS.Timeout | undefined;
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d) => {
      out += d.toString();
      // The first JSON line with a url and a pid is serve-process's; log lines (JSON too) may come before it.
      for (const line of out.split("\n").filter((l) => l.startsWith("{") && l.endsWith("}"))) {
        const o = JSON.parse(line) as { url?: string; pid?: number };
        if (o.url !== undefined && o.pid !== undefined) return resolve(o.url);
      }
    });
    void exited.then((code) => reject(new Error(`server exited (${code}) before listening: ${err}`)));
    startTimer = setTimeout(() => {
      child.kill("SIGKILL"); // nobody gets a handle on it: it must not outlive the test
      reject(new Error(`server did not start in 20 s: ${err}`));
    }, 20_000).unref();
  }).finally(() => clearTimeout(startTimer)); // once listening, it is the caller's to stop
  return { url, child, exited, stderr: () => err };
}
