import { describe, expect, it } from "vitest";
import { checkFailures } from "../../../bench/lib/check.js";
import type { CrossNodeLatency, MultiNodeResult, NodesRun } from "../../../bench/lib/multi-node.js";
import { metricSum } from "../../../bench/lib/prometheus.js";
import type { RunResults } from "../../../bench/lib/report.js";
import { renderMarkdown } from "../../../bench/lib/report.js";
import { renderMultiNode } from "../../../bench/lib/report-multi-node.js";

const nodesRun = (perSec: number, over: Partial<NodesRun> = {}): NodesRun => ({
  perSec,
  cpu: { producersUs: 12, consumersUs: 8, serverUs: { tablemq: 30, mariadb: 25 } },
  db: { selects: 0.01, updates: 0.02, rowsRead: 3, rowsSent: 1.5, rowsUpdated: 1, bytesSent: 400 },
  claimsLost: 0,
  polls: 7,
  busEventsPublished: 0,
  busMessagesReceived: 0,
  unique: 50_000,
  missing: 0,
  duplicates: 0,
  ...over,
});

const latency = (p99: number): CrossNodeLatency => ({
  publishToReceiveMs: { p50: p99 / 3, p90: p99 / 2, p99, max: p99 * 2, n: 5_000 },
  enqueueMs: { p50: 1, p90: 2, p99: 3, max: 4, n: 5_000 },
  claimsLost: 0,
  polls: 5_000,
  busEventsPublished: 5_000,
  busMessagesReceived: 5_000,
  unique: 5_500,
  missing: 0,
  duplicates: 0,
});

function result(over: Partial<MultiNodeResult> = {}): MultiNodeResult {
  return {
    messages: 50_000,
    producers: 4,
    consumers: 4,
    warmup: { runs: 3, messages: 50_000 },
    rounds: [
      { order: ["one", "two"], one: nodesRun(30_000), two: nodesRun(28_500, { claimsLost: 1_200, polls: 40 }) },
      { order: ["two", "one"], one: nodesRun(20_000), two: nodesRun(18_000, { claimsLost: 900, polls: 35 }) },
      { order: ["one", "two"], one: nodesRun(30_000), two: null },
    ],
    ratios: [0.95, 0.9, null],
    medianRatio: 0.925,
    latency: { ratePerSec: 500, pollIntervalMs: 1_000, peerPollMs: 1_000, redis: latency(6), noRedis: latency(990) },
    missing: 0,
    duplicates: 0,
    claimsLost: 2_100,
    errors: ["round 3 two: worker failed"],
    ...over,
  };
}

const run = (workload: object | undefined, quick = false): RunResults => ({
  startedAt: "2026-12-07T12:00:00.000Z",
  command: "npm run bench -- --only tablemq --workload multi-node",
  machine: { cores: 2, cpu: "test", memoryGb: 8, node: "v20" },
  quick,
  systems: { tablemq: { workloads: workload ? { "multi-node": workload } : {} } },
});

describe("the multi-node section of the report", () => {
  it("gives each round's rates and ratio, and judges the median against the 0.9 target", () => {
    const text = renderMultiNode(run(result())).join("\n");
    expect(text).toContain("## Several nodes on one database (multi-node, tablemq)");
    expect(text).toContain("| one node msg/s | 30,000 | 20,000 | 30,000 |");
    expect(text).toContain("| two nodes msg/s | 28,500 | 18,000 | failed |");
    expect(text).toContain("| **two ÷ one** | 0.95 | 0.90 | – |");
    expect(text).toContain("| two nodes: claims lost | 1,200 | 900 | failed |");
    expect(text).toContain("median: **0.93** (target ≥ 0.9: met)");
    expect(text).toContain("**0 lost, 0 duplicates**, 2,100 claims lost");
    expect(text).toContain("Failed runs (left out of the medians): round 3 two: worker failed.");
    expect(renderMultiNode(run(result({ medianRatio: 0.5 }))).join("\n")).toContain("(target ≥ 0.9: **not met**)");
  });

  it("gives the cross-node p99 with and without the bus, the first against the 10 ms target", () => {
    const text = renderMultiNode(run(result())).join("\n");
    expect(text).toMatch(/\| Redis \| 2\.00 \| 3\.00 \| \*\*6\.00\*\* \| 12\.00 \|/);
    expect(text).toContain("With Redis, p99 6.00 ms (target ≤ 10 ms: met).");
    expect(text).toContain("Without it, p99 990 ms against a poll interval of 1,000 ms");
    const slow = result({ latency: { ...result().latency, redis: latency(25), noRedis: { error: "bus did not come up" } } });
    const slowText = renderMultiNode(run(slow)).join("\n");
    expect(slowText).toContain("(target ≤ 10 ms: **not met**)");
    expect(slowText).toContain("| none (polling) | failed: bus did not come up |");
  });

  it("does not judge the targets in a quick run", () => {
    const text = renderMultiNode(run(result({ medianRatio: 0.5 }), true)).join("\n");
    expect(text).toContain("(target ≥ 0.9: not judged in a quick run)");
    expect(text).toContain("(target ≤ 10 ms: not judged in a quick run)");
  });

  it("says why it did not run, and is absent when the workload was not asked for", () => {
    expect(renderMultiNode(run({ error: "tablemq serve exited with 1\nstack" })).join("\n")).toContain(
      "Did not run: tablemq serve exited with 1",
    );
    expect(renderMultiNode(run(undefined))).toEqual([]);
  });

  it("is part of RESULTS.md", () => {
    expect(renderMarkdown(run(result()))).toContain("## Several nodes on one database (multi-node, tablemq)");
  });
});

describe("--check", () => {
  it("passes a run that lost nothing and delivered nothing twice", () => {
    expect(checkFailures(run(result({ errors: [] })))).toEqual([]);
  });

  it("fails multi-node on a duplicate, a lost message or a failed run", () => {
    expect(checkFailures(run(result({ errors: [], duplicates: 2 })))).toEqual(["multi-node: 2 duplicates"]);
    expect(checkFailures(run(result({ errors: [], missing: 1 })))).toEqual(["multi-node: 1 missing"]);
    expect(checkFailures(run(result()))).toEqual(["multi-node: round 3 two: worker failed"]);
    expect(checkFailures(run({ error: "boom" }))).toEqual(["multi-node: boom"]);
  });

  it("fails when tablemq did not run at all", () => {
    expect(checkFailures({ ...run(undefined), systems: {} })).toEqual(["did not run"]);
    expect(checkFailures({ ...run(undefined), systems: { tablemq: { unavailable: "no database", workloads: {} } } })).toEqual([
      "no database",
    ]);
  });
});

describe("reading /metrics", () => {
  const text = [
    "# HELP tablemq_claims_lost_total Messages read due here but claimed first by another node",
    "# TYPE tablemq_claims_lost_total counter",
    'tablemq_claims_lost_total{table="a"} 12',
    'tablemq_claims_lost_total{table="b"} 3',
    'tablemq_claims_lost_totally{table="a"} 100',
    "tablemq_bus_events_published_total 7",
  ].join("\n");

  it("sums the samples of one metric whose labels match", () => {
    expect(metricSum(text, "tablemq_claims_lost_total", { table: "a" })).toBe(12);
    expect(metricSum(text, "tablemq_claims_lost_total")).toBe(15);
    expect(metricSum(text, "tablemq_bus_events_published_total")).toBe(7);
  });

  it("counts a metric that is absent as 0", () => {
    expect(metricSum(text, "tablemq_claims_lost_total", { table: "c" })).toBe(0);
    expect(metricSum(text, "tablemq_polls_total")).toBe(0);
  });
});
