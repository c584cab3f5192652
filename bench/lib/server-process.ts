import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";

export interface ServerProcess {
  child: ChildProcess;
  url: string;
}

/**
 * A server the run starts (`node <args>`, `tablemq serve`), in a process of its own; resolves with the URL
 * of its "tablemq listening on <url>" line on stderr (stdout carries its JSON logs); `env` is added to this
 * process's environment. Its stderr is passed on to ours. TABLEMQ_BENCH_SERVER_STDOUT names a file for its
 * stdout (V8's --trace-gc* print there).
 */
export async function startServerProcess(args: string[], what: string, env?: Record<string, string>): Promise<ServerProcess> {
  const child = spawn(process.execPath, args, {
    stdio: ["ignore", "pipe", "pipe"],
    ...(env ? { env: { ...process.env, ...env } } : {}),
  });
  const copy = process.env.TABLEMQ_BENCH_SERVER_STDOUT;
  if (copy) child.stdout!.pipe(createWriteStream(copy));
  else child.stdout!.resume();
  child.stderr!.pipe(process.stderr);
  const url = await new Promise<string>((resolve, reject) => {
    let err = "";
    child.stderr!.on("data", (d) => {
      err += d.toString();
      const m = /listening on (http\S+)/.exec(err);
      if (m) resolve(m[1]!);
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
