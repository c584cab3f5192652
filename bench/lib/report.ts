/** Renders a run's results as Markdown, with tablemq's ratios to each peer and to the MySQL ceiling. */
import { n } from "./format.js";
import { CEILING, median, medianRatio, type PairedRounds } from "./pairs.js";
import { renderMultiNode } from "./report-multi-node.js";
import { BENCH_LOG_LEVEL } from "./server-flags.js";
import { renderSqlite } from "./report-sqlite.js";
import { renderTxn } from "./report-txn.js";
import { renderManyTables } from "./report-many-tables.js";
import { VARIANTS, YARDSTICKS } from "./systems.js";

export interface SystemResults {
  version?: string;
  durability?: string;
  unavailable?: string;
  /** w1-e2e msg/s of each untimed warm-up round, in order. */
  warmupPerSec?: number[];
  workloads: Record<string, any>;
}

export interface RunResults {
  startedAt: string;
  command: string;
  machine: { cores: number; cpu: string; memoryGb: number; node: string };
  quick: boolean;
  /** The untimed warm-up every system gets first: rounds of w1-e2e with this many messages each. */
  warmup?: { rounds: number; messages: number };
  systems: Record<string, SystemResults>;
  /** perSec: the highest of `runs` (run.ts measures it more than once). */
  ceiling?: {
    perSec: number;
    version: string;
    runs?: Array<{ when: string; perSec: number }>;
    commitMs?: { p50: number; p90: number; p99: number; max: number };
  };
  /** The paired rounds (pairs.ts): every system's w1-e2e and the ceiling, back to back, several times. */
  pairs?: PairedRounds;
}

const ratio = (a: unknown, b: unknown) => (typeof a === "number" && typeof b === "number" && b > 0 ? `${(a / b).toFixed(2)}×` : "–");
const ok = (w: any) => w && !w.error;
const deliveryCell = (w: any) => (ok(w) ? `${w.missing}${w.stopped ? ` (${w.stopped})` : ""} / ${w.duplicates}` : "–");

export function renderMarkdown(r: RunResults): string {
  const out: string[] = [];
  const rows = Object.entries(r.systems);
  out.push(`# Benchmark results${r.quick ? " (quick smoke run: sizes too small for conclusions)" : ""}`, "");
  out.push(`Command: \`${r.command}\`  `);
  out.push(`Run: ${r.startedAt} on ${r.machine.cores} cores (${r.machine.cpu}), ${r.machine.memoryGb} GiB, Node ${r.machine.node}.`, "");
  out.push(
    "Producers and consumers run in separate processes from the server and from each other. Each system's producer and consumer processes are started once and kept from its warm-up through its last workload, as deployed clients stay up, so their code is warm too (cold, a new process per workload spent more CPU per message on compiling and unoptimised code).",
    "",
  );
  out.push(
    `Before its workloads every system gets the same untimed warm-up (${warmupText(r)}), and each system's server runs for the whole run, as a deployed one would: tablemq's \`tablemq serve\` is started once (with the Node flags of \`npm start\` and \`--log-level ${BENCH_LOG_LEVEL}\`; at the default \`info\` a request logs nothing either), like the peers' servers, which run as system services. tablemq's producers use its own client (\`TablemqClient.publish\`: Node's http with a keep-alive connection); its consumers use a WebSocket (\`ws\`) and ack each batch with one frame. Each client gets the ~200-byte JSON payload in the form its docs use: the object for tablemq, BullMQ and pg-boss (their clients encode it), JSON text for RabbitMQ and NATS (theirs carry bytes).`,
    "",
  );

  out.push("## Throughput (w1: 4 producers × batches of 100, 4 consumers with at most 100 unacked each)", "");
  out.push("| system | w1 publish msg/s | w1 drain msg/s | w1-e2e msg/s | missing / duplicates (w1, e2e) | durability |");
  out.push("|---|---:|---:|---:|---|---|");
  for (const [name, s] of rows) {
    if (s.unavailable) {
      out.push(`| ${name} | – | – | – | – | not run: ${s.unavailable} |`);
      continue;
    }
    const w1 = s.workloads["w1"];
    const e2e = s.workloads["w1-e2e"];
    out.push(
      `| ${name} | ${ok(w1) ? n(w1.publishPerSec) : err(w1)} | ${ok(w1) ? n(w1.drainPerSec) : "–"} | ${ok(e2e) ? n(e2e.e2ePerSec) : err(e2e)} | ${deliveryCell(w1)}, ${deliveryCell(e2e)} | ${s.durability ?? ""} |`,
    );
  }
  out.push("");

  const warmups = rows.filter(([, s]) => s.warmupPerSec?.length);
  if (warmups.length > 0) {
    out.push(
      `Warm-up rounds (w1-e2e msg/s, untimed, in order): ${warmups.map(([name, s]) => `${name} ${s.warmupPerSec!.map((v) => n(v)).join(" → ")}`).join("; ")}.`,
      "",
    );
  }

  out.push("### Where the CPU went in w1-e2e (µs of CPU per message; the box has 2 cores, so 2 s of CPU per second)", "");
  out.push(
    "Producers and consumers: their own processes' CPU time. Server side: the system's server processes (tablemq: its server and MariaDB). Throughput can be no more than 2,000,000 ÷ total.",
    "",
  );
  out.push("| system | producers | consumers | server side | total |");
  out.push("|---|---:|---:|---|---:|");
  for (const [name, s] of rows) {
    const c = s.workloads["w1-e2e"]?.cpu;
    if (!c) continue;
    const server = Object.values(c.serverUs ?? {}) as number[];
    const serverTotal = server.reduce((a, b) => a + b, 0);
    const parts = Object.entries(c.serverUs ?? {})
      .map(([k, v]) => `${k} ${n(v)}`)
      .join(" + ");
    out.push(
      `| ${name} | ${n(c.producersUs)} | ${n(c.consumersUs)} | ${server.length > 1 ? `${n(serverTotal)} (${parts})` : n(serverTotal)} | ${n(c.producersUs + c.consumersUs + serverTotal)} |`,
    );
  }
  out.push("");

  out.push("## Latency (w2: one producer, one message per request, 2 consumers; warm-up excluded)", "");
  out.push("| system | publish→receive p50 ms | p90 | p99 | max | enqueue p50 ms | enqueue p99 ms |");
  out.push("|---|---:|---:|---:|---:|---:|---:|");
  for (const [name, s] of rows) {
    const w = s.workloads["w2"];
    if (!ok(w)) continue;
    const l = w.publishToReceiveMs;
    out.push(
      `| ${name} | ${n(l.p50, 2)} | ${n(l.p90, 2)} | ${n(l.p99, 2)} | ${n(l.max, 2)} | ${n(w.enqueueMs.p50, 2)} | ${n(w.enqueueMs.p99, 2)} |`,
    );
  }
  out.push("");

  out.push("## Backlog (everything enqueued first, then drained)", "");
  out.push(
    "| system | messages | publish msg/s | drain msg/s, first 10 % | last 10 % | last ÷ first | server peak RSS MB | missing / duplicates |",
  );
  out.push("|---|---:|---:|---:|---:|---:|---:|---|");
  for (const [name, s] of rows) {
    const w = s.workloads["backlog"];
    if (!ok(w)) continue;
    const d = w.drainPerSecByDecile as number[];
    out.push(
      `| ${name} | ${n(w.unique + w.missing)} | ${n(w.publishPerSec)} | ${n(d[0])} | ${n(d.at(-1))} | ${n(w.firstVsLast, 2)} | ${n(w.serverPeakRssMb)} | ${deliveryCell(w)} |`,
    );
  }
  out.push("");

  out.push(...renderLargePayload(r));
  out.push(...renderDueTimes(r));
  out.push(...renderMultiNode(r));
  out.push(...renderManyTables(r));
  out.push(...renderSqlite(r));
  out.push(...renderTxn(r));

  const t = r.systems["tablemq"];
  if (t && !t.unavailable) {
    out.push("## Ratios: tablemq ÷ each peer (throughput: higher is better for tablemq; p99: lower is)", "");
    out.push("| peer | w1 publish | w1 drain | w1-e2e | w2 p99 latency | large-payload drain MB/s |");
    out.push("|---|---:|---:|---:|---:|---:|");
    for (const [name, s] of rows) {
      if (name === "tablemq" || s.unavailable || YARDSTICKS.has(name) || VARIANTS.has(name)) continue;
      const tw1 = t.workloads["w1"];
      const pw1 = s.workloads["w1"];
      out.push(
        `| ${name} | ${ratio(tw1?.publishPerSec, pw1?.publishPerSec)} | ${ratio(tw1?.drainPerSec, pw1?.drainPerSec)} | ${ratio(t.workloads["w1-e2e"]?.e2ePerSec, s.workloads["w1-e2e"]?.e2ePerSec)} | ${ratio(t.workloads["w2"]?.publishToReceiveMs?.p99, s.workloads["w2"]?.publishToReceiveMs?.p99)} | ${ratio(large(t)?.drainMBps, large(s)?.drainMBps)} |`,
      );
    }
    out.push("");
  }
  if (r.ceiling) {
    out.push(`## Bare-MySQL ceiling`, "");
    out.push(
      `4 connections, each INSERTing 100 rows in one statement then UPDATEing them acked: **${n(r.ceiling.perSec)} msg/s** (${r.ceiling.version}).`,
    );
    const runs = r.ceiling.runs ?? [];
    if (runs.length > 1) {
      out.push(
        "",
        `The highest of ${runs.length} measurements in this run: ${runs.map((c) => `${c.when} ${n(c.perSec)}`).join(", ")} msg/s.`,
      );
    }
    const e2e = t?.workloads["w1-e2e"]?.e2ePerSec;
    if (typeof e2e === "number") out.push("", `tablemq w1-e2e ÷ ceiling: **${((e2e / r.ceiling.perSec) * 100).toFixed(0)} %**.`);
    const c = r.ceiling.commitMs;
    if (c) {
      out.push(
        "",
        `Commit latency, the floor under w2 (one connection, one single-row INSERT per autocommit statement at w2's rate): p50 ${n(c.p50, 2)} ms, p90 ${n(c.p90, 2)} ms, **p99 ${n(c.p99, 2)} ms**, max ${n(c.max, 2)} ms.`,
      );
      const p99 = t?.workloads["w2"]?.publishToReceiveMs?.p99;
      if (typeof p99 === "number") out.push("", `tablemq w2 p99 publish→receive ÷ bare commit p99: **${(p99 / c.p99).toFixed(2)}×**.`);
    }
  }
  if (r.pairs) out.push("", ...renderPairs(r.pairs));
  const floor = r.systems["node-floor"];
  if (t && floor && !floor.unavailable) {
    out.push("", "## The Node floor", "");
    out.push(
      "node-floor is not a queue: the least Node server that keeps tablemq's write promises on the same MariaDB (node:http, ws, mysql2; each enqueue's INSERT and each ack's UPDATE committed before the answer; no validation, cache, poller, delivery record or metrics), driven by the same producers and consumers. It shows what any Node server on MySQL pays on this machine.",
    );
    const e2e = ratio(t.workloads["w1-e2e"]?.e2ePerSec, floor.workloads["w1-e2e"]?.e2ePerSec);
    const p99 = ratio(t.workloads["w2"]?.publishToReceiveMs?.p99, floor.workloads["w2"]?.publishToReceiveMs?.p99);
    out.push("", `tablemq ÷ node-floor: w1-e2e **${e2e}** (higher is better for tablemq), w2 p99 latency **${p99}** (lower is).`);
  }
  return out.join("\n");
}

/** The tablemq server's peak RSS target in large-payload (the issue's: with the default cache byte budget). */
const LARGE_RSS_TARGET_MB = 300;
/** A system's large-payload result, when it ran without error. */
const large = (s: SystemResults | undefined) => (ok(s?.workloads["large-payload"]) ? s!.workloads["large-payload"] : undefined);

function renderLargePayload(r: RunResults): string[] {
  const rows = Object.entries(r.systems).filter(([, s]) => s.workloads["large-payload"]);
  if (rows.length === 0) return [];
  const out: string[] = [];
  const any = rows.map(([, s]) => large(s)).find(Boolean);
  const size = any ? `${n(any.messages)} × ${n(any.payloadBytes / 1024)} KiB` : "100 KiB payloads";
  out.push(`## Large payloads (${size}: enqueued with no subscriber connected, then drained by one)`, "");
  out.push(
    "Each message is a JSON document of exactly that size as JSON text (a few numbers and a long deterministic string; the same for every system), published by 4 producers in batches of 10 (one request or confirm window each) before the one subscriber (at most 100 unacked) starts. Drain: from the subscriber's start, before it connects, to its last message; MB/s is payload bytes ÷ drain seconds (MB = 2^20 bytes). Peak RSS: the largest resident memory of each server process over the whole workload (enqueue and drain), after where it started: the kernel's peak (VmHWM), reset at the workload's start; where that cannot be, VmRSS sampled every 100 ms (marked sampled; a group of several processes, such as PostgreSQL's, is their RSS summed, which counts shared memory once per process). The figures at the start include what the warm-up and earlier workloads left (tablemq's server runs without V8's memory reducer and keeps its heap; MariaDB's buffer pool and RabbitMQ's VM keep what they cached), so read the growth as well as the peak.",
    "",
  );
  out.push(
    "| system | publish MB/s | drain MB/s | drain msg/s | first message ms | server peak RSS MB (at start → peak) | missing / duplicates |",
  );
  out.push("|---|---:|---:|---:|---:|---|---|");
  for (const [name, s] of rows) {
    const w = s.workloads["large-payload"];
    if (!ok(w)) {
      out.push(`| ${name} | ${err(w)} | – | – | – | – | – |`);
      continue;
    }
    const rss = Object.entries(
      (w.serverRssMb ?? {}) as Record<string, { startMb: number; peakMb: number; how: string; processes?: number }>,
    )
      .map(([group, m]) => {
        const how = m.how === "sampled" ? ` (sampled${(m.processes ?? 1) > 1 ? `, ${m.processes} processes summed` : ""})` : "";
        return `${group} ${n(m.startMb)} → **${n(m.peakMb)}**${how}`;
      })
      .join("; ");
    out.push(
      `| ${name} | ${n(w.publishMBps, 1)} | ${n(w.drainMBps, 1)} | ${n(w.drainPerSec)} | ${n(w.firstMessageMs)} | ${rss || "–"} | ${deliveryCell(w)} |`,
    );
  }
  out.push("");
  const t = large(r.systems["tablemq"]);
  const notes: string[] = [];
  const peak = t?.serverRssMb?.tablemq?.peakMb;
  if (typeof peak === "number") {
    const verdict = peak <= LARGE_RSS_TARGET_MB ? "met" : "**not met**";
    notes.push(
      `tablemq server peak RSS **${n(peak)} MB** (target ≤ ${LARGE_RSS_TARGET_MB} MB, set for 2,000 messages: ${r.quick ? "not judged in a quick run" : verdict}).`,
    );
  }
  for (const [name, s] of rows) {
    if (name === "tablemq" || !t || !large(s)) continue;
    notes.push(`tablemq ÷ ${name}, drain MB/s: **${ratio(t.drainMBps, large(s).drainMBps)}**.`);
  }
  if (notes.length) out.push(notes.join(" "), "");
  return out;
}

/** The issue's target for the due-times workload: p99 lateness. */
const DUE_P99_TARGET_MS = 50;

function renderDueTimes(r: RunResults): string[] {
  const w = r.systems["tablemq"]?.workloads["due-times"];
  if (!w) return [];
  const out = ["## Due times (tablemq: delays, redeliveries, the default 30 s poll interval)", ""];
  if (!ok(w)) return [...out, `Did not run: ${err(w)}`, ""];
  out.push(
    `${n(w.messages)} messages, each with a \`deliverAt\` drawn uniformly from now to ${n(w.maxDelayMs / 1000)} s ahead, enqueued in requests of 100 before one subscriber (at most 1,000 unacked) connects; it leaves one in ten unacked once, redelivered after the ack wait (5 s) plus a fixed backoff (1 s). The table polls every 30 s, so a delivery on time is the due-time schedule's (\`bench/lib/due-times.ts\`). Lateness: arrival − deliverAt; for redeliveries, arrival − (first arrival + 6 s), an upper bound. Polls: the table's own counter; SELECTs: MariaDB's, the whole server.`,
    "",
  );
  out.push("| deliveries | n | late p50 ms | p99 ms | max ms |", "|---|---:|---:|---:|---:|");
  out.push(`| first (at deliverAt) | ${n(w.lateMs.n)} | ${n(w.lateMs.p50)} | ${n(w.lateMs.p99)} | ${n(w.lateMs.max)} |`);
  out.push(
    `| redelivered (after ack wait + backoff) | ${n(w.redeliveryLateMs.n)} | ${n(w.redeliveryLateMs.p50)} | ${n(w.redeliveryLateMs.p99)} | ${n(w.redeliveryLateMs.max)} |`,
  );
  const p99 = Math.max(w.lateMs.p99, w.redeliveryLateMs.p99);
  const verdict = r.quick ? "not judged in a quick run" : p99 <= DUE_P99_TARGET_MS ? "met" : "**not met**";
  out.push(
    "",
    `p99 lateness ${n(p99)} ms (target ≤ ${DUE_P99_TARGET_MS} ms: ${verdict}). Polls ${n(w.pollsPerSec, 1)}/s over ${n(w.durationSec)} s, where the fixed-interval poll alone runs ${n(w.fixedPollsPerSec, 3)}/s; MariaDB SELECTs ${n(w.selectsPerSec, 1)}/s. Missing ${n(w.missing)}, duplicates ${n(w.duplicates)}.`,
    "",
  );
  return out;
}

/** A paired ratio against `name`: a percentage of the ceiling, else a factor. */
const ratioText = (name: string, v: number) => (name === CEILING ? `${(v * 100).toFixed(0)} %` : `${v.toFixed(2)}×`);

function renderPairs(p: PairedRounds): string[] {
  const out: string[] = [];
  const rounds = p.orders.length;
  const names = Object.keys(p.perSec);
  const head = Array.from({ length: rounds }, (_, i) => `round ${i + 1}`);
  out.push("## Paired rounds: ratios measured back to back", "");
  out.push(
    `This machine's speed drifts by up to ±20 % within an hour, and every process on it drifts together, so a ratio of two numbers measured minutes apart (the tables above) carries that drift. After the workloads, ${rounds === 1 ? "one round" : `each of ${rounds} rounds`} ran every system's w1-e2e (the same size as above, on the same servers and load generators, each timed run right after an untimed one: a Node process idle for a minute comes back slow, as V8 shrank its heap, and every system's load generators are Node) and the ceiling back to back, starting each round one place later in the order (round 1: ${p.orders[0]?.join(", ") ?? "–"}). Each round gives one ratio per pair; the median over the rounds is the ratio that counts.`,
    "",
  );
  out.push(`| w1-e2e msg/s | ${head.join(" | ")} |`);
  out.push(`|---|${"---:|".repeat(rounds)}`);
  for (const name of names) out.push(`| ${name} | ${p.perSec[name]!.map((v) => (v === null ? "failed" : n(v))).join(" | ")} |`);
  out.push("");
  const t = p.perSec["tablemq"];
  if (t) {
    out.push(`| tablemq ÷ | ${head.join(" | ")} | **median** |`);
    out.push(`|---|${"---:|".repeat(rounds + 1)}`);
    for (const name of names) {
      if (name === "tablemq") continue;
      const { median, ratios } = medianRatio(t, p.perSec[name]!);
      const cell = (v: number | null) => (v === null ? "–" : ratioText(name, v));
      out.push(
        `| ${name}${YARDSTICKS.has(name) ? " (yardstick)" : VARIANTS.has(name) ? " (tablemq's own)" : ""} | ${ratios.map(cell).join(" | ")} | **${Number.isNaN(median) ? "–" : cell(median)}** |`,
      );
    }
    out.push("");
  }
  // What the yardstick itself reaches against the peers in the same rounds: how far any Node server on this
  // MariaDB can go, so a gap that node-floor shares is not tablemq's code.
  for (const yard of names.filter((name) => YARDSTICKS.has(name))) {
    const against = names
      .filter((name) => name !== yard && name !== "tablemq")
      .map((name) => {
        const m = medianRatio(p.perSec[yard]!, p.perSec[name]!).median;
        return Number.isNaN(m) ? undefined : `${name} ${ratioText(name, m)}`;
      })
      .filter(Boolean);
    if (against.length > 0) out.push(`${yard} ÷ each of the others, median over the same rounds: ${against.join(", ")}.`, "");
  }
  // "tablemq 82, rabbitmq-quorum 131": each system's median over the rounds, where it was measured.
  const medians = (byName: Record<string, Array<number | null>>) =>
    Object.entries(byName)
      .filter(([, us]) => !Number.isNaN(median(us)))
      .map(([name, us]) => `${name} ${n(median(us))}`)
      .join(", ");
  const cpu = medians(p.cpuUs);
  if (cpu) {
    out.push(`CPU per message in these rounds (median; load generators + server side, µs): ${cpu}.`);
    const other = medians(p.otherUs);
    if (other) {
      out.push(
        "",
        `What the rest of the box used meanwhile (median µs per message; the box's busy time minus the above, which also counts the runner and the seconds around the measurement, so an upper bound): ${other}.`,
      );
    }
  }
  if (p.errors.length > 0) out.push(`Failed measurements (left out of the medians): ${p.errors.join("; ")}.`);
  return out;
}

function warmupText(r: RunResults): string {
  if (!r.warmup) return "w1-e2e";
  const { rounds, messages } = r.warmup;
  return rounds === 1 ? `w1-e2e with ${n(messages)} messages` : `${rounds} rounds of w1-e2e with ${n(messages)} messages each`;
}

function err(w: any): string {
  return w?.error ? `error: ${String(w.error).split("\n")[0]!.slice(0, 80)}` : "–";
}
