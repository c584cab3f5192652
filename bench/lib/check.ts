/** What `npm run bench -- --check` fails on (CI runs it with --quick): tablemq's own workloads only. */
import type { RunResults } from "./report.js";

/**
 * Why tablemq's run does not pass, one reason each; empty when it passes. It fails when tablemq did not run,
 * a workload of it failed or lost a message, or multi-node delivered a message twice (two nodes sending it
 * within an ack wait) or had a run fail. Peers may be unavailable: they are not checked.
 */
export function checkFailures(r: RunResults): string[] {
  const t = r.systems["tablemq"];
  if (!t) return ["did not run"];
  if (t.unavailable) return [t.unavailable];
  const out: string[] = [];
  for (const [name, w] of Object.entries(t.workloads) as Array<[string, Record<string, any>]>) {
    if (w.error) {
      out.push(`${name}: ${String(w.error).split("\n")[0]}`);
      continue;
    }
    if (w.missing) out.push(`${name}: ${w.missing} missing${w.stopped ? ` (${w.stopped})` : ""}`);
    if (name === "multi-node") {
      if (w.duplicates) out.push(`${name}: ${w.duplicates} duplicates`);
      for (const e of (w.errors ?? []) as string[]) out.push(`${name}: ${e}`);
    }
  }
  return out;
}
