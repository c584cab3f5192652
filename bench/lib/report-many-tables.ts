/** The many-tables section of the report (issue 29): one server with 10 tables and with many, side by side. */
import { n, verdict } from "./format.js";
import type { Idle, ManyTablesResult, ManyTablesRun } from "./many-tables.js";
import type { RunResults } from "./report.js";

/** The targets for the large size. */
export const MANY_TABLES_TARGETS = { idleCpuPercent: 5, idleStatementsPerSec: 50, rssMb: 500, firstPageMs: 100, p99Ms: 10 };

export function renderManyTables(r: Pick<RunResults, "quick" | "systems">): string[] {
  const w = r.systems["tablemq"]?.workloads["many-tables"] as (ManyTablesResult & { error?: string; skipped?: string }) | undefined;
  if (!w || w.skipped) return [];
  const out = ["## Many tables (many-tables)", ""];
  if (w.error) return [...out, `Did not run: ${w.error}`, ""];
  out.push(
    "One server, default table options (30 s poll interval); 10 tables beside many. Idle: nothing moving, first with no subscriber (the tables alone), then with one idle WebSocket subscriber per table: the server's CPU (% of one core), MariaDB's statements per second (the whole server's Questions) and the server's RSS. Listing: `GET /v1/tables` (pages of 100 with their counts), the first page (median of 5) and every page. Active: the same 10,000 msg/s on both sizes (requests of 100 messages, spread evenly), over all 10 tables or over 100 of the many; enqueue→delivery from a request's send to each message's arrival at its table's subscriber.",
    "",
    "| tables | create (ms per table) | idle, no subscriber: CPU % / statements/s / RSS MB | idle, a subscriber each: CPU % / statements/s / RSS MB | first page ms | all pages ms | active tables × msg/s | enqueue→delivery p50 / p99 ms | active CPU % | longest event-loop hold, server / bench ms | RSS MB after | lost / duplicates |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  );
  for (const x of w.runs) {
    const a = x.active;
    out.push(
      `| ${n(x.tables)} | ${n(x.createSec, 1)} s (${n(x.createMsPerTable, 1)}) | ${idle(x.bare)} | ${idle(x.idle)} | ${n(x.listing.firstPageMs, 1)} | ${n(x.listing.allPagesMs)} (${n(x.listing.pages)} pages) | ${n(a.tables)} × ${n(a.ratePerTable)} | ${n(a.enqueueToDeliveryMs.p50, 2)} / ${n(a.enqueueToDeliveryMs.p99, 2)} | ${n(a.cpuPercent)} | ${n(a.serverLoopMaxMs)} / ${n(a.benchLoopMaxMs)} | ${n(a.rssMb)} | ${n(a.missing)} / ${n(a.duplicates)} |`,
    );
  }
  out.push("");
  const big = w.runs.reduce<ManyTablesRun | undefined>((a, b) => (!a || b.tables > a.tables ? b : a), undefined);
  if (big && big.tables > 10) {
    const t = MANY_TABLES_TARGETS;
    const judged = (label: string, value: number, limit: number, unit: string, digits = 1) =>
      `${label} ${n(value, digits)}${unit} (target ≤ ${limit}${unit}: ${verdict(r.quick, value <= limit)})`;
    out.push(
      `Targets at ${n(big.tables)} tables: ${[
        judged("idle CPU", big.idle.cpuPercent, t.idleCpuPercent, " %"),
        judged("idle statements", big.idle.statementsPerSec, t.idleStatementsPerSec, "/s"),
        judged("RSS", Math.max(big.idle.rssMb, big.active.rssMb), t.rssMb, " MB", 0),
        judged("first page", big.listing.firstPageMs, t.firstPageMs, " ms"),
        judged("enqueue→delivery p99", big.active.enqueueToDeliveryMs.p99, t.p99Ms, " ms", 2),
      ].join("; ")}.`,
      "",
    );
  }
  if (w.mariadb) {
    out.push(
      `MariaDB's table caches in this run: table_open_cache ${n(w.mariadb.tableOpenCache)}, table_definition_cache ${n(w.mariadb.tableDefinitionCache)} (see the README's "Many tables" for why they should exceed the number of tables).`,
      "",
    );
  }
  for (const e of w.errors) out.push(`- failed: ${e}`);
  if (w.errors.length > 0) out.push("");
  return out;
}

const idle = (x: Idle | undefined): string => (x ? `${n(x.cpuPercent, 1)} / ${n(x.statementsPerSec, 1)} / ${n(x.rssMb)}` : "–");
