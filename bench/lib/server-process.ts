import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";

export interface ServerProcess {
  child: ChildProcess;
  url: string;
}

/**
 * A server the run starts (`node <args>`), in a process of its own; resolves with the URL it prints first
 * on stdout; `env` is added to this process's environment. TABLEMQ_BENCH_SERVER_STDOUT names a file for the
 * rest of its stdout (V8's --trace-gc* print there).
 */
export async function startServerProcess(args: string[], what: string, env?: Record<string, string>): Promise<ServerProcess> {
  const child = spawn(process.execPath, args, {
    stdio: ["ignore", "pipe", "inherit"],
    ...(env ? { env: { ...process.env, ...env } } : {}),
  });
  const copy = process.env.TABLEMQ_BENCH_SERVER_STDOUT;
  if (copy) child.stdout!.pipe(createWriteStream(copy));
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d) => {
      out += d.toString();
      const line = out.split("\n").find((l) => l.startsWith("http"));
      if (line) resolve(line.trim());
    });
    child.once("exit", (code) => reject(new Error(`${what} exited with ${code}`)));
  });
  return { child, url };
}

/** Stops a server the run started, if it is still running. */
export async function stopServerProcess(server: ServerProcess | undefined): Promise<void> {
  const child = server?.child;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}
