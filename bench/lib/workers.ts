import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { WorkerCommand, WorkerReport } from "../worker.js";
import { words } from "./server-flags.js";

const WORKER = fileURLToPath(new URL("../worker.ts", import.meta.url));

type Report<T extends WorkerReport["type"]> = Extract<WorkerReport, { type: T }>;

/** One worker process, driven over IPC: it runs one produce or consume command at a time. */
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
      this.exitError = new Error(`worker exited with ${code}`);
      this.wake();
    });
  }

  static async start(): Promise<Worker> {
    // TABLEMQ_BENCH_WORKER_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the workers.
    const nodeArgs = words(process.env.TABLEMQ_BENCH_WORKER_NODE_ARGS);
    const child = fork(WORKER, [], { execArgv: [...nodeArgs, "--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    const w = new Worker(child);
    await w.next("ready");
    return w;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null && this.child.connected;
  }

  send(cmd: WorkerCommand): void {
    if (cmd.cmd !== "stop") this.received = 0; // a new command counts from zero
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

  /** Ends the process: it leaves when its IPC channel closes. */
  end(): void {
    if (this.child.connected) this.child.disconnect();
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

export type Role = "producer" | "consumer";

/**
 * Worker processes kept between the workloads of one system, by role, as a deployed producer or consumer
 * stays up: each workload takes the ones it needs (starting more when there are too few) and gives them
 * back when it is done. So the untimed warm-up rounds warm the load generators' code (V8 compiles a
 * function for speed only after many calls) as they warm the server's, and the timed workloads are not
 * paid for a fresh process's unoptimised code and compilation. Workers of a workload that failed are
 * killed, not kept.
 */
const idle = new Map<string, Worker[]>();

async function takeWorkers(system: string, role: Role, n: number): Promise<Worker[]> {
  const key = `${system}/${role}`;
  const kept = (idle.get(key) ?? []).filter((w) => w.alive);
  const taken = kept.splice(0, n);
  idle.set(key, kept);
  const fresh = await Promise.all(Array.from({ length: n - taken.length }, () => Worker.start()));
  return [...taken, ...fresh];
}

function returnWorkers(system: string, role: Role, workers: readonly Worker[]): void {
  const key = `${system}/${role}`;
  idle.set(key, [...(idle.get(key) ?? []), ...workers.filter((w) => w.alive)]);
}

/** Runs `work` with workers taken for it; gives them back after, or kills them if it failed. */
export async function withWorkers<T>(system: string, role: Role, n: number, work: (workers: Worker[]) => Promise<T>): Promise<T> {
  const workers = await takeWorkers(system, role, n);
  try {
    const result = await work(workers);
    returnWorkers(system, role, workers);
    return result;
  } catch (err) {
    for (const w of workers) w.kill();
    throw err;
  }
}

/** Ends the kept workers of `system` (of every system when absent). */
export function endWorkers(system?: string): void {
  for (const [key, workers] of idle) {
    if (system !== undefined && !key.startsWith(`${system}/`)) continue;
    for (const w of workers) w.end();
    idle.delete(key);
  }
}
