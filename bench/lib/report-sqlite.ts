/** The embedded store's section of the report (issue 28): tablemq on SQLite beside the peers, and its stalls. */
import { n, verdict } from "./format.js";
import { medianRatio } from "./pairs.js";
import type { RunResults } from "./report.js";

/** The targets: w1-e2e ≥ 1.0 × RabbitMQ quorum in the paired rounds; w2 p99 ≤ 5 ms. */
export const SQLITE_QUORUM_TARGET = 1.0;
export const SQLITE_W2_P99_TARGET_MS = 5;

type Figures = Record<string, any> | undefined;

export function renderSqlite(r: Pick<RunResults, "quick" | "systems" | "pairs">): string[] {
  const s = r.systems["tablemq-sqlite"];
  if (!s) return [];
  const out = ["## tablemq on the embedded SQLite store (tablemq-sqlite)", ""];
  if (s.unavailable) return [...out, `Did not run: ${s.unavailable}`, ""];
  out.push(
    `The same server, client, table options and load generators as tablemq's rows, on \`sqlite:<temp>/bench.db\` instead of MariaDB (${s.durability ?? "?"}); its rows in the tables above are tablemq-sqlite. Every SQLite statement holds the thread it runs on (better-sqlite3 is synchronous), a commit for its fsync: by default that is a worker thread of the store's own (\`TABLEMQ_SQLITE_THREAD=worker\`), so they hold that thread, not the event loop. The table gives each workload's statements (the server's own counters, tablemq_sqlite_*: count, mean, longest, how many took over 1 and 5 ms) and the event loop's longest delay (Node's nodejs_eventloop_lag_max_seconds), beside tablemq's on MariaDB in the same workload: what the event loop waits for that is not SQLite.`,
    "",
  );
  out.push(
    "| workload | statements | mean ms | longest ms | over 1 ms | over 5 ms | event loop max delay ms | on MariaDB, same workload |",
  );
  out.push("|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const name of ["w1", "w1-e2e", "w2", "backlog"]) {
    const w = s.workloads[name] as Figures;
    if (!w || "error" in w) continue;
    const mysql = r.systems["tablemq"]?.workloads[name] as Figures;
    out.push(
      `| ${name} | ${n(w.sqliteStatements)} | ${n(w.sqliteStatementMeanMs, 3)} | ${n(w.sqliteStatementMaxMs, 2)} | ${n(w.sqliteStatementsOver1Ms)} | ${n(w.sqliteStatementsOver5Ms)} | ${n(w.eventLoopMaxMs, 1)} | ${n(mysql?.eventLoopMaxMs, 1)} |`,
    );
  }
  out.push("");
  const notes: string[] = [];
  const p99 = (s.workloads["w2"] as Figures)?.publishToReceiveMs?.p99 as number | undefined;
  if (typeof p99 === "number") {
    notes.push(
      `w2 p99 publish→receive **${n(p99, 2)} ms** (target ≤ ${SQLITE_W2_P99_TARGET_MS} ms: ${verdict(r.quick, p99 <= SQLITE_W2_P99_TARGET_MS)}).`,
    );
    const floor = (r.systems["node-floor"]?.workloads["w2"] as Figures)?.publishToReceiveMs?.p99 as number | undefined;
    if (typeof floor === "number") {
      notes.push(`node-floor (a bare Node HTTP + WebSocket server, no store) had w2 p99 ${n(floor, 2)} ms in the same run.`);
    }
  }
  const pairs = r.pairs;
  const mine = pairs?.perSec["tablemq-sqlite"];
  const quorum = pairs?.perSec["rabbitmq-quorum"];
  if (mine && quorum) {
    const { median } = medianRatio(mine, quorum);
    if (!Number.isNaN(median)) {
      notes.push(
        `w1-e2e, tablemq-sqlite ÷ rabbitmq-quorum in the paired rounds (median): **${median.toFixed(2)}×** (target ≥ ${SQLITE_QUORUM_TARGET.toFixed(1)}: ${verdict(r.quick, median >= SQLITE_QUORUM_TARGET)}).`,
      );
    }
    const mysql = pairs?.perSec["tablemq"];
    if (mysql) {
      const m = medianRatio(mine, mysql).median;
      if (!Number.isNaN(m)) notes.push(`tablemq-sqlite ÷ tablemq on MariaDB, same rounds: ${m.toFixed(2)}×.`);
    }
  }
  if (notes.length > 0) out.push(notes.join(" "), "");
  return out;
}
