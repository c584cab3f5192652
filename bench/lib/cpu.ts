/**
 * CPU time of the server side of a run (the tablemq server and MariaDB, RabbitMQ's beam.smp, …), read from
 * /proc so it costs nothing while the run goes: a snapshot before and after a workload, summed over the
 * processes that match. Each process counts its own time and that of its children it has reaped (cutime,
 * cstime): PostgreSQL's backends, one per connection, exit when the workload's clients disconnect, and their
 * time lands in the postmaster's. A process that starts during the workload counts from zero; one that
 * exits during it counts minus what it had used before (its total is then in its parent's children time).
 * Returns nothing off Linux.
 */
import { readdir, readFile, writeFile } from "node:fs/promises";

/** Which processes are the system's servers: by pid, or by the kernel's short name (/proc/<pid>/comm). */
export interface ServerProcesses {
  pids?: number[];
  comms?: string[];
}

const TICK_MS = 10; // USER_HZ is 100 on Linux

export type CpuSnapshot = Map<number, number>;

/**
 * A process's /proc/<pid>/stat: its short name and the fields after it (fields[0] is the state, the 3rd field
 * of proc(5); minflt is fields[7], utime fields[11], stime fields[12], rss in pages fields[21]).
 */
export async function procStat(pid: number): Promise<{ comm: string; fields: string[] } | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  const close = stat.lastIndexOf(")");
  if (close < 0) return undefined;
  return { comm: stat.slice(stat.indexOf("(") + 1, close), fields: stat.slice(close + 2).split(" ") };
}

export async function snapshot(which: ServerProcesses): Promise<CpuSnapshot | undefined> {
  let entries: string[];
  try {
    entries = await readdir("/proc");
  } catch {
    return undefined;
  }
  const out: CpuSnapshot = new Map();
  const pids = new Set(which.pids ?? []);
  const comms = new Set(which.comms ?? []);
  await Promise.all(
    entries
      .filter((e) => /^\d+$/.test(e))
      .map(async (e) => {
        const pid = Number(e);
        const stat = await procStat(pid);
        if (!stat) return;
        const { comm, fields } = stat;
        if (!pids.has(pid) && !comms.has(comm)) return;
        // utime + stime + cutime + cstime
        out.set(pid, (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * TICK_MS);
      }),
  );
  return out;
}

/** CPU ms the matched processes used between two snapshots. */
export function cpuMsBetween(before: CpuSnapshot | undefined, after: CpuSnapshot | undefined): number | undefined {
  if (!before || !after) return undefined;
  let ms = 0;
  for (const [pid, t] of after) ms += t - (before.get(pid) ?? 0);
  for (const [pid, t] of before) if (!after.has(pid)) ms -= t; // exited: its total is in its parent's now
  return ms;
}

/** Peak resident memory (bytes) of a process, from /proc/<pid>/status (VmHWM); nothing off Linux. */
export async function peakRss(pid: number | undefined): Promise<number | undefined> {
  if (!pid) return undefined;
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
  return kb ? Number(kb) * 1024 : undefined;
}

/** Resident memory of a process now and its peak (VmRSS, VmHWM of /proc/<pid>/status), in bytes. */
async function residentOf(pid: number): Promise<{ rss: number; hwm: number } | undefined> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const rss = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  const hwm = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
  return rss && hwm ? { rss: Number(rss) * 1024, hwm: Number(hwm) * 1024 } : undefined;
}

/** Resident memory of one server process group over a stretch of a run (bytes). */
export interface RssSpan {
  /** At the start of the stretch (summed over the group's processes). */
  start: number;
  peak: number;
  /** Processes of the group seen during the stretch. */
  processes: number;
  /**
   * "VmHWM": one process, whose peak the kernel kept (VmHWM, reset at the start through clear_refs and read
   * at the end): exact. "sampled": the largest sum of the group's VmRSS, read every `everyMs` (a group of
   * several processes, such as PostgreSQL's, whose shared memory each one's RSS counts; or a process whose
   * peak could not be reset here), so a shorter spike can be missed.
   */
  how: "VmHWM" | "sampled";
}

/**
 * Watches the resident memory of each server process group (the same groups as the CPU accounting) from now
 * until `stop()`: the peak within that stretch, not since the process started (a server that ran a bigger
 * workload before keeps that peak in VmHWM). Resets each matched process's VmHWM to its current RSS (writing
 * "5" to /proc/<pid>/clear_refs, which changes nothing else) and samples VmRSS meanwhile; processes matched
 * by name are looked up again every second (PostgreSQL starts one per connection). Nothing off Linux.
 */
export async function watchRss(
  groups: Record<string, ServerProcesses>,
  everyMs = 100,
): Promise<{ stop(): Promise<Record<string, RssSpan>> }> {
  const resetPeak = (pid: number) =>
    writeFile(`/proc/${pid}/clear_refs`, "5").then(
      () => true,
      () => false,
    );
  const watched = await Promise.all(
    Object.entries(groups).map(async ([name, which]) => {
      const pids = [...((await snapshot(which))?.keys() ?? [])];
      const reset = await Promise.all(pids.map(resetPeak));
      return { name, which, pids: new Set(pids), seen: new Set(pids), reset: reset.every(Boolean), start: 0, peak: 0 };
    }),
  );
  let samples = 0;
  const sample = async () => {
    samples++;
    for (const g of watched) {
      if (g.which.comms?.length && samples % Math.max(1, Math.round(1000 / everyMs)) === 0) {
        g.pids = new Set((await snapshot(g.which))?.keys() ?? []);
        for (const pid of g.pids) g.seen.add(pid);
      }
      const now = await Promise.all([...g.pids].map(residentOf));
      const sum = now.reduce((a, r) => a + (r?.rss ?? 0), 0);
      if (samples === 1) g.start = sum;
      g.peak = Math.max(g.peak, sum);
    }
  };
  await sample();
  let sampling: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    sampling = sampling.then(sample);
  }, everyMs);
  return {
    async stop() {
      clearInterval(timer);
      await sampling;
      await sample();
      const out: Record<string, RssSpan> = {};
      for (const g of watched) {
        if (g.seen.size === 0 || g.start === 0) continue;
        const only = g.seen.size === 1 && g.reset ? await residentOf([...g.seen][0]!) : undefined;
        out[g.name] = only
          ? { start: g.start, peak: Math.max(g.peak, only.hwm), processes: 1, how: "VmHWM" }
          : { start: g.start, peak: g.peak, processes: g.seen.size, how: "sampled" };
      }
      return out;
    },
  };
}

/**
 * CPU ms the whole box has spent busy so far (all cores: user, nice, system, irq, softirq, steal), from
 * /proc/stat; nothing off Linux. Compared with what a workload's processes used, it shows how much of the
 * box something else took meanwhile.
 */
export async function boxBusyMs(): Promise<number | undefined> {
  const stat = await readFile("/proc/stat", "utf8").catch(() => "");
  const line = stat.split("\n", 1)[0] ?? "";
  if (!line.startsWith("cpu ")) return undefined;
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return (user! + nice! + system! + irq! + softirq! + steal!) * TICK_MS;
}
