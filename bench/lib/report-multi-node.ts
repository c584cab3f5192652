/** The multi-node section of the report (multi-node.ts): two nodes ÷ one, and cross-node latency. */
import { n, verdict } from "./format.js";
import { median } from "./pairs.js";
import type { CrossNodeLatency, MultiNodeResult, NodesRun } from "./multi-node.js";
import type { RunResults } from "./report.js";

/** The issue's targets (issue 25): two nodes ÷ one in w1-e2e, and cross-node w2 p99 with the bus. */
export const MULTI_NODE_RATIO_TARGET = 0.9;
export const CROSS_NODE_P99_TARGET_MS = 10;

/** The section, from tablemq's multi-node result (none when it did not run; "Did not run" when it failed). */
export function renderMultiNode(r: Pick<RunResults, "quick" | "machine" | "systems">): string[] {
  const w = r.systems["tablemq"]?.workloads["multi-node"] as MultiNodeResult | { error: string } | undefined;
  if (!w) return [];
  const { quick } = r;
  const { cores } = r.machine;
  const out = ["## Several nodes on one database (multi-node, tablemq)", ""];
  if ("error" in w) return [...out, `Did not run: ${String(w.error).split("\n")[0]}`, ""];
  const rounds = w.rounds.length;
  out.push(
    `Throughput: w1-e2e (${w.producers} producers × batches of 100, ${w.consumers} consumers with at most 100 unacked each, ${n(w.messages)} messages) on **one node** (alone on its database, no Redis, as a single node is deployed) and on **two nodes** of one database woken by the Redis bus, ${w.producers / 2} producers and ${w.consumers / 2} consumers on each. Both run on this ${cores}-core machine with their servers started for this workload, after the same untimed warm-up per node (${w.warmup.runs} × ${n(w.warmup.messages)} messages on the one node, twice that on the pair, whose nodes each see half). ${rounds === 1 ? "One round ran" : `${rounds} rounds ran`} the two back to back, the order swapped each round; the ratio two ÷ one is taken within each round and the median counts. Claims lost: deliveries a node read due and another node claimed first (\`tablemq_claims_lost_total\`, both nodes); polls: the table's, both nodes; duplicates: messages delivered twice (the consumers ack at once, so a second delivery is another node's within the ack wait).`,
    "",
  );
  const head = Array.from({ length: rounds }, (_, i) => `round ${i + 1}`);
  const row = (label: string, cell: (round: MultiNodeResult["rounds"][number], i: number) => string) =>
    `| ${label} | ${w.rounds.map(cell).join(" | ")} |`;
  const run = (r: NodesRun | null, f: (r: NodesRun) => string) => (r ? f(r) : "failed");
  out.push(`| w1-e2e | ${head.join(" | ")} |`, `|---|${"---:|".repeat(rounds)}`);
  out.push(row("order", (r) => r.order.join(" → ")));
  out.push(row("one node msg/s", (r) => run(r.one, (x) => n(x.perSec))));
  out.push(row("two nodes msg/s", (r) => run(r.two, (x) => n(x.perSec))));
  out.push(row("**two ÷ one**", (_, i) => n(w.ratios[i], 2)));
  out.push(row("two nodes: claims lost", (r) => run(r.two, (x) => n(x.claimsLost))));
  out.push(row("polls (one / two)", (r) => `${run(r.one, (x) => n(x.polls))} / ${run(r.two, (x) => n(x.polls))}`));
  out.push(
    row(
      "lost / duplicates (one; two)",
      (r) => `${run(r.one, (x) => `${x.missing} / ${x.duplicates}`)}; ${run(r.two, (x) => `${x.missing} / ${x.duplicates}`)}`,
    ),
  );
  out.push("");
  out.push(
    `Two nodes ÷ one, median: **${n(w.medianRatio, 2)}** (target ≥ ${MULTI_NODE_RATIO_TARGET}: ${verdict(quick, w.medianRatio >= MULTI_NODE_RATIO_TARGET)}). Over every run of the workload (warm-up, rounds, latency): **${n(w.missing)} lost, ${n(w.duplicates)} duplicates**, ${n(w.claimsLost)} claims lost.`,
    "",
  );
  out.push(...renderCpu(w, cores));
  out.push(...renderLatency(w, quick));
  if (w.errors.length > 0) out.push(`Failed runs (left out of the medians): ${w.errors.join("; ")}.`, "");
  return out;
}

/** Median CPU µs per message of each configuration, by process group, and what the pair adds. */
function renderCpu(w: MultiNodeResult, cores: number): string[] {
  const runs = (k: "one" | "two") => w.rounds.map((r) => r[k]).filter((r): r is NodesRun => r !== null);
  const groups = [...new Set(w.rounds.flatMap((r) => [r.one, r.two]).flatMap((r) => Object.keys(r?.cpu.serverUs ?? {})))];
  if (runs("one").length === 0 && runs("two").length === 0) return [];
  const med = (k: "one" | "two", f: (r: NodesRun) => number | undefined) => median(runs(k).map((r) => f(r) ?? null));
  const total = (r: NodesRun) => r.cpu.producersUs + r.cpu.consumersUs + Object.values(r.cpu.serverUs ?? {}).reduce((a, b) => a + b, 0);
  const cols = [
    "producers",
    "consumers",
    ...groups,
    "total",
    "SELECTs",
    "UPDATEs",
    "rows sent",
    "rows read",
    "rows updated",
    "bytes sent",
    "bus events / run",
  ];
  const line = (k: "one" | "two") =>
    `| ${k === "one" ? "one node" : "two nodes"} | ${[
      n(med(k, (r) => r.cpu.producersUs)),
      n(med(k, (r) => r.cpu.consumersUs)),
      ...groups.map((g) => n(med(k, (r) => r.cpu.serverUs?.[g]))),
      `**${n(med(k, total))}**`,
      n(
        med(k, (r) => r.db.selects),
        3,
      ),
      n(
        med(k, (r) => r.db.updates),
        3,
      ),
      n(
        med(k, (r) => r.db.rowsSent),
        1,
      ),
      n(
        med(k, (r) => r.db.rowsRead),
        1,
      ),
      n(
        med(k, (r) => r.db.rowsUpdated),
        1,
      ),
      n(med(k, (r) => r.db.bytesSent)),
      n(med(k, (r) => r.busEventsPublished)),
    ].join(" | ")} |`;
  return [
    `Where the CPU went (median over the rounds, µs per message; ${cores} cores give ${n(cores * 1e6)} µs of CPU per second, so throughput is at most ${n(cores * 1e6)} ÷ total), per message MariaDB's SELECT and UPDATE statements, the rows it sent to clients (a poll's rows, which tablemq decodes), read and updated, and the bytes it sent (the whole server's counters: Com_select, Com_update, Rows_sent, Rows_read, Handler_update, Bytes_sent), and the bus events the nodes published per run:`,
    "",
    `| | ${cols.join(" | ")} |`,
    `|---|${"---:|".repeat(cols.length)}`,
    line("one"),
    line("two"),
    "",
  ];
}

function renderLatency(w: MultiNodeResult, quick: boolean): string[] {
  const l = w.latency;
  const out = [
    `Cross-node latency: w2 (one producer, one message per request at ${n(l.ratePerSec)} msg/s, warm-up excluded) enqueued through node A, one subscriber on node B, with the Redis bus (A's commit wakes B) and without it (B finds A's rows when it polls: at least every ${n(l.peerPollMs)} ms, \`TABLEMQ_PEER_POLL_MS\`, while a peer is live; the table polls every ${n(l.pollIntervalMs)} ms anyway), each pair on a database of its own.`,
    "",
    "| bus | publish→receive p50 ms | p90 | p99 | max | enqueue p99 ms | polls | claims lost | lost / duplicates |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---|",
  ];
  const line = (label: string, r: CrossNodeLatency | { error: string }) => {
    if ("error" in r) return `| ${label} | failed: ${r.error.slice(0, 80)} | | | | | | | |`;
    const p = r.publishToReceiveMs;
    return `| ${label} | ${n(p.p50, 2)} | ${n(p.p90, 2)} | **${n(p.p99, 2)}** | ${n(p.max, 2)} | ${n(r.enqueueMs.p99, 2)} | ${n(r.polls)} | ${n(r.claimsLost)} | ${r.missing} / ${r.duplicates} |`;
  };
  out.push(line("Redis", l.redis), line("none (polling)", l.noRedis), "");
  const notes: string[] = [];
  if (!("error" in l.redis)) {
    const p99 = l.redis.publishToReceiveMs.p99;
    notes.push(
      `With Redis, p99 ${n(p99, 2)} ms (target ≤ ${CROSS_NODE_P99_TARGET_MS} ms: ${verdict(quick, p99 <= CROSS_NODE_P99_TARGET_MS)}).`,
    );
  }
  if (!("error" in l.noRedis)) {
    notes.push(
      `Without it, p99 ${n(l.noRedis.publishToReceiveMs.p99)} ms against a poll interval of ${n(Math.min(l.peerPollMs, l.pollIntervalMs))} ms: a row committed on A waits for B's next poll.`,
    );
  }
  if (notes.length > 0) out.push(notes.join(" "), "");
  return out;
}
