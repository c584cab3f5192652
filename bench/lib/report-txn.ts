/** tablemq/sql's section of the report (issue 26): producers that enqueue in their own transactions (tablemq-txn). */
import { n, verdict } from "./format.js";
import { CEILING, medianRatio } from "./pairs.js";
import type { RunResults } from "./report.js";

/** The targets: the INSERT path within 10 % of the ceiling's INSERT half; commit→delivery p99 ≤ 10 ms. */
export const TXN_INSERT_TARGET = 0.9;
export const TXN_P99_TARGET_MS = 10;

type Figures = Record<string, any> | undefined;

export function renderTxn(r: Pick<RunResults, "quick" | "systems" | "pairs">): string[] {
  const s = r.systems["tablemq-txn"];
  if (!s) return [];
  const out = ["## Enqueue in the application's transaction (tablemq-txn)", ""];
  if (s.unavailable) return [...out, `Did not run: ${s.unavailable}`, ""];
  out.push(
    "The same server and consumers as tablemq's rows; each producer is an application connection (mysql2) that opens a transaction, enqueues its batch of 100 with `tablemq/sql`, commits, and then wakes the server (`HttpNotifier`: `POST .../wake`). A publish counts once its commit returned; the wake goes out meanwhile (an application need not wait for it).",
    "",
  );
  const notes: string[] = [];
  const w1 = s.workloads["w1"] as Figures;
  const http = r.systems["tablemq"]?.workloads["w1"] as Figures;
  if (w1 && !("error" in w1)) {
    notes.push(`w1 publish **${n(w1.publishPerSec)} msg/s** (tablemq over HTTP, same run: ${n(http?.publishPerSec)}).`);
  }
  const insert = s.workloads["txn-insert"] as Figures;
  if (insert && !("error" in insert) && typeof insert.medianRatio === "number") {
    const rounds = (insert.rounds as Array<{ txnPerSec: number; insertCeilingPerSec: number; autocommitPerSec: number }>)
      .map((x) => `${n(x.txnPerSec)} ÷ ${n(x.insertCeilingPerSec)} (${n(x.autocommitPerSec)})`)
      .join(", ");
    notes.push(
      `INSERT path: producers (no wake) ÷ the ceiling's INSERT half in the same 4 connections and transactions of 100 rows (BEGIN + INSERT + COMMIT, without the helper), ${insert.rounds.length} rounds back to back (producers ÷ bare, and in brackets the INSERT half autocommitted, as the ceiling runs it: ${rounds}): median **${insert.medianRatio.toFixed(2)}** (target ≥ ${TXN_INSERT_TARGET}: ${verdict(r.quick, insert.medianRatio >= TXN_INSERT_TARGET)}); against the autocommitted INSERTs (one round trip per batch instead of three) ${n(insert.medianRatioAutocommit, 2)}.`,
    );
  }
  const w2 = s.workloads["w2"] as Figures;
  const p99 = w2?.answerToReceiveMs?.p99 as number | undefined;
  if (typeof p99 === "number") {
    notes.push(
      `w2 (one message per transaction), commit→delivery (from the COMMIT's return to the subscriber's receipt, the wake sent after it unwaited): p50 ${n(w2!.answerToReceiveMs.p50, 2)} ms, p99 **${n(p99, 2)} ms** (target ≤ ${TXN_P99_TARGET_MS} ms: ${verdict(r.quick, p99 <= TXN_P99_TARGET_MS)}). With the transaction before it (BEGIN + INSERT + COMMIT: p50 ${n(w2!.enqueueMs?.p50, 2)} ms, p99 ${n(w2!.enqueueMs?.p99, 2)} ms), from before its INSERT to the receipt: p50 ${n(w2!.publishToReceiveMs.p50, 2)} ms, p99 ${n(w2!.publishToReceiveMs.p99, 2)} ms.`,
    );
  }
  const mine = r.pairs?.perSec["tablemq-txn"];
  if (mine) {
    for (const [other, label] of [
      ["tablemq", "tablemq over HTTP"],
      [CEILING, "the ceiling (INSERT + ack UPDATE)"],
    ] as const) {
      const theirs = r.pairs?.perSec[other];
      if (!theirs) continue;
      const m = medianRatio(mine, theirs).median;
      if (!Number.isNaN(m)) notes.push(`w1-e2e paired rounds, tablemq-txn ÷ ${label}: ${m.toFixed(2)}×.`);
    }
  }
  out.push(...notes.map((x) => `- ${x}`), "");
  return out;
}
