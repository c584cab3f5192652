/** What `npm run bench -- --check` fails on (CI runs it with --quick): tablemq's own workloads only, on each store. */
import type { RunResults } from "./report.js";
import { VARIANTS } from "./systems.js";

/**
 * Why tablemq's run does not pass, one reason each; empty when it passes. It fails when tablemq did not run,
 * a workload of it failed or lost a message, or multi-node delivered a message twice (two nodes sending it
 * within an ack wait) or had a run fail, or many-tables delivered one twice or had a size fail. Peers may be unavailable: they are not checked.
 */
export function checkFailures(r: RunResults): string[] {
  const out: string[] = [];
  for (const system of ["tablemq", ...OURS]) {
    const t = r.systems[system];
    const at = system === "tablemq" ? "" : `${system} `;
    if (!t) {
      if (system === "tablemq") out.push("did not run");
      continue;
    }
    if (t.unavailable) {
      out.push(`${at}${t.unavailable}`);
      continue;
    }
    for (const [name, w] of Object.entries(t.workloads) as Array<[string, Record<string, any>]>) {
      if (w.error) {
        out.push(`${at}${name}: ${String(w.error).split("\n")[0]}`);
        continue;
      }
      if (w.missing) out.push(`${at}${name}: ${w.missing} missing${w.stopped ? ` (${w.stopped})` : ""}`);
      if (name === "multi-node" || name === "many-tables") {
        if (w.duplicates) out.push(`${at}${name}: ${w.duplicates} duplicates`);
        for (const e of (w.errors ?? []) as string[]) out.push(`${at}${name}: ${e}`);
      }
    }
  }
  return out;
}

/** tablemq's other stores, checked as tablemq is when they were asked for (a run limited by --only may leave them out). */
const OURS: readonly string[] = [...VARIANTS];
