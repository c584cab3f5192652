import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { WorkerCommand, WorkerReport } from "../worker.js";

const WORKER = fileURLToPath(new URL("../worker.ts", import.meta.url));

type Report<T extends WorkerReport["type"]> = Extract<WorkerReport, { type: T }>;

/** One worker process, driven over IPC. */
export class Worker {
  private readonly reports: WorkerReport[] = [];
  private waiters: Array<() => void> = [];
  received = 0;
  private exitError: Error | undefined;

  private constructor(private readonly child: ChildProcess) {
    child.on("message", (r: WorkerReport) => {
      if (r.type === "progress") this.received = r.received;
      else this.reports.push(r);
      this.wake();
    });
    child.on("exit", (code) => {
      if (code) this.exitError = new Error(`worker exited with ${code}`);
      this.wake();
    });
  }

  static async start(): Promise<Worker> {
    // TABLEMQ_BENCH_WORKER_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the workers.
    const nodeArgs = (process.env.TABLEMQ_BENCH_WORKER_NODE_ARGS ?? "").split(" ").filter(Boolean);
    const child = fork(WORKER, [], { execArgv: [...nodeArgs, "--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    const w = new Worker(child);
    await w.next("ready");
    return w;
  }

  send(cmd: WorkerCommand): void {
    this.child.send(cmd);
  }

  async next<T extends WorkerReport["type"]>(type: T, timeoutMs = 600_000): Promise<Report<T>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const error = this.reports.find((r) => r.type === "error") as Report<"error"> | undefined;
      if (error) throw new Error(`worker failed: ${error.message}`);
      const i = this.reports.findIndex((r) => r.type === type);
      if (i >= 0) return this.reports.splice(i, 1)[0] as Report<T>;
      if (this.exitError) throw this.exitError;
      if (Date.now() > deadline) throw new Error(`worker: no ${type} report within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 1_000).unref();
      });
    }
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill("SIGKILL");
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

export async function startWorkers(n: number): Promise<Worker[]> {
  return Promise.all(Array.from({ length: n }, () => Worker.start()));
}
