/**
 * CPU time of the server side of a run (the tablemq server and MariaDB, RabbitMQ's beam.smp, …), read from
 * /proc so it costs nothing while the run goes: a snapshot before and after a workload, summed over the
 * processes that match. Each process counts its own time and that of its children it has reaped (cutime,
 * cstime): PostgreSQL's backends, one per connection, exit when the workload's clients disconnect, and their
 * time lands in the postmaster's. A process that starts during the workload counts from zero; one that
 * exits during it counts minus what it had used before (its total is then in its parent's children time).
 * Returns nothing off Linux.
 */
import { readdir, readFile } from "node:fs/promises";

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
    entries.filter((e) => /^\d+$/.test(e)).map(async (e) => {
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
