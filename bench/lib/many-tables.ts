/**
 * many-tables (tablemq only; issue 29): one server holding many tables, each with one idle WebSocket
 * subscriber, beside the same server holding 10 tables, so the growth is visible. For each size, on a
 * database of its own and a server started for it (default table options: a 30 s poll interval):
 *  - creation: the tables made over HTTP, 8 requests at a time, and the subscribers opened, 200 at a time;
 *  - idle: nothing moving for `idleSec`: the server's CPU (% of one core, /proc), MariaDB's statements per
 *    second (Questions, the whole server's, less the bench's own reads of it), and the server's RSS; first
 *    for half as long with no subscriber (the tables alone), then with one on each table;
 *  - listing: `GET /v1/tables` first page (median of 5) and every page followed to the end;
 *  - active: the same total rate on both sizes (ACTIVE_RATE msg/s): 100 tables at 100 msg/s each on the
 *    large size, all 10 at 1,000 msg/s each on the small one; each table gets a request of BATCH messages
 *    every BATCH / rate seconds, the requests of all tables spread evenly over that period (in requests of
 *    10 the server was CPU-bound at this rate on both sizes, ~1 ms a request), and enqueue→
 *    delivery is the time from a request's send to each of its messages' arrival at the table's subscriber
 *    (one process: one clock), warm-up excluded.
 * The servers are stopped and the databases dropped when the workload ends, whether or not it failed.
 */
import http from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createConnection } from "mysql2/promise";
import WebSocket from "ws";
import { cpuMsBetween, procStat, snapshot } from "./cpu.js";
import { summarize } from "./stats.js";
import { metricSum, scrape } from "./prometheus.js";
import type { RunContext } from "./workloads.js";
import { benchDatabaseUrl, createDatabase, dropDatabase, startServer } from "../systems/tablemq.js";
import { type ServerProcess, stopServerProcess } from "./server-process.js";

/** Total enqueue rate of the active phase (msg/s), on every size. */
const ACTIVE_RATE = 10_000;
/** Tables active on the large size (the rest stay idle). */
const ACTIVE_TABLES = 100;
/** Messages per enqueue request in the active phase. */
const BATCH = 100;
const CREATE_AT_ONCE = 8;
const SUBSCRIBE_AT_ONCE = 200;

export interface ManyTablesSizes {
  /** The large size's tables (the small one is always 10). */
  tables: number;
  idleSec: number;
  activeWarmupSec: number;
  activeSec: number;
}

export const MANY_TABLES_FULL: ManyTablesSizes = { tables: 10_000, idleSec: 60, activeWarmupSec: 3, activeSec: 20 };
export const MANY_TABLES_QUICK: ManyTablesSizes = { tables: 200, idleSec: 5, activeWarmupSec: 1, activeSec: 3 };

export interface ManyTablesRun {
  tables: number;
  /** Seconds to create the tables over HTTP, and ms per table. */
  createSec: number;
  createMsPerTable: number;
  subscribers: number;
  subscribeSec: number;
  /** Idle with nobody subscribed (the tables alone), and with a subscriber on each. */
  bare: Idle;
  idle: Idle;
  listing: { firstPageMs: number; allPagesMs: number; pages: number; listed: number };
  active: {
    tables: number;
    ratePerTable: number;
    sent: number;
    received: number;
    missing: number;
    duplicates: number;
    enqueueToDeliveryMs: ReturnType<typeof summarize>;
    enqueueMs: ReturnType<typeof summarize>;
    cpuPercent: number;
    rssMb: number;
    /**
     * The longest the server's event loop was held during the phase (prom-client's
     * nodejs_eventloop_lag_max_seconds, scraped before and after), and this process's (its 10,000 sockets'
     * GC counts in what it measures too).
     */
    serverLoopMaxMs: number;
    benchLoopMaxMs: number;
  };
}

export interface Idle {
  seconds: number;
  cpuPercent: number;
  statementsPerSec: number;
  rssMb: number;
}

export interface ManyTablesResult {
  runs: ManyTablesRun[];
  /** MariaDB's table caches during the run: with fewer entries than tables, statements reopen tables. */
  mariadb?: { tableOpenCache: number; tableDefinitionCache: number };
  /** Over both sizes: what --check fails on. */
  missing: number;
  duplicates: number;
  errors: string[];
}

export async function manyTables(ctx: RunContext, log: (msg: string) => void): Promise<ManyTablesResult> {
  const sizes = ctx.sizes.manyTables;
  const runId = `${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36)}`;
  const result: ManyTablesResult = { runs: [], missing: 0, duplicates: 0, errors: [] };
  result.mariadb = await tableCaches().catch(() => undefined);
  for (const tables of [10, sizes.tables]) {
    try {
      const run = await runSize(tables, sizes, `tablemq_bench_mt_${runId}_${tables}`, log);
      result.runs.push(run);
      result.missing += run.active.missing;
      result.duplicates += run.active.duplicates;
    } catch (err) {
      result.errors.push(`${tables} tables: ${(err as Error).message}`);
      log(`many-tables ${tables} tables failed: ${(err as Error).message}`);
    }
  }
  return result;
}

async function runSize(count: number, sizes: ManyTablesSizes, database: string, log: (msg: string) => void): Promise<ManyTablesRun> {
  await createDatabase(database);
  let server: ServerProcess | undefined;
  const sockets: WebSocket[] = [];
  try {
    server = await startServer({ databaseUrl: benchDatabaseUrl(database), env: { TABLEMQ_MAX_CONNECTIONS: "0" } });
    const url = server.url;
    const pid = server.child.pid!;
    const names = Array.from({ length: count }, (_, i) => `mt_${String(i).padStart(5, "0")}`);

    const t0 = performance.now();
    await inParallel(names, CREATE_AT_ONCE, async (name) => {
      const res = await fetch(`${url}/v1/tables/${name}`, { method: "PUT" });
      if (res.status !== 201) throw new Error(`PUT ${name}: ${res.status} ${await res.text()}`);
    });
    const createSec = (performance.now() - t0) / 1000;
    log(`many-tables ${count}: created in ${createSec.toFixed(1)} s`);

    await sleep(2_000);
    const bare = await measureIdle(pid, database, sizes.idleSec / 2);
    log(`many-tables ${count}: idle with no subscriber ${JSON.stringify(bare)}`);

    const subscribers = new Map<string, Subscriber>();
    const t1 = performance.now();
    await inParallel(names, SUBSCRIBE_AT_ONCE, async (name) => {
      const s = await subscribe(`${url.replace(/^http/, "ws")}/v1/tables/${name}/subscribe?maxInFlight=1000`);
      sockets.push(s.ws);
      subscribers.set(name, s);
    });
    const subscribeSec = (performance.now() - t1) / 1000;
    log(`many-tables ${count}: ${subscribers.size} subscribers in ${subscribeSec.toFixed(1)} s`);

    await sleep(5_000); // the first polls and looks settle
    const idle = await measureIdle(pid, database, sizes.idleSec);
    log(`many-tables ${count}: idle ${JSON.stringify(idle)}`);
    const listing = await measureListing(url, count);
    log(`many-tables ${count}: listing ${JSON.stringify(listing)}`);
    const active = await measureActive(url, pid, names.slice(0, Math.min(ACTIVE_TABLES, count)), subscribers, sizes);
    log(`many-tables ${count}: active ${JSON.stringify({ ...active, enqueueToDeliveryMs: active.enqueueToDeliveryMs })}`);
    return {
      tables: count,
      createSec,
      createMsPerTable: (createSec * 1000) / count,
      subscribers: subscribers.size,
      subscribeSec,
      bare,
      idle,
      listing,
      active,
    };
  } finally {
    for (const ws of sockets) ws.terminate();
    await stopServerProcess(server);
    await dropDatabase(database).catch(() => {});
  }
}

interface Subscriber {
  ws: WebSocket;
  /** Told of each message that arrives: its payload's request number and the arrival time (ms). */
  onMessage?: (payload: { r: number; i: number }, at: number) => void;
}

/** A subscriber that acks every batch at once (the bench's protocol consumer, with arrival times). */
async function subscribe(url: string): Promise<Subscriber> {
  const ws = new WebSocket(url);
  const s: Subscriber = { ws };
  ws.on("message", (data) => {
    const at = performance.now();
    const frame = JSON.parse(data.toString()) as { type: string; messages?: Array<{ id: string; payload: { r: number; i: number } }> };
    if (frame.type !== "messages" || !frame.messages) return;
    for (const m of frame.messages) s.onMessage?.(m.payload, at);
    ws.send(JSON.stringify({ type: "ack", ids: frame.messages.map((m) => m.id) }));
  });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  return s;
}

async function measureIdle(pid: number, database: string, seconds: number): Promise<Idle> {
  const conn = await createConnection(benchDatabaseUrl(database));
  try {
    const questions = async () => {
      const [rows] = await conn.query("SHOW GLOBAL STATUS LIKE 'Questions'");
      return Number((rows as Array<{ Value: string }>)[0]!.Value);
    };
    const cpu0 = await snapshot({ pids: [pid] });
    const q0 = await questions();
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const q1 = await questions();
    const cpu1 = await snapshot({ pids: [pid] });
    const elapsed = (performance.now() - t0) / 1000;
    return {
      seconds: elapsed,
      cpuPercent: ((cpuMsBetween(cpu0, cpu1) ?? NaN) / (elapsed * 1000)) * 100,
      statementsPerSec: (q1 - q0 - 1) / elapsed, // less the bench's own SHOW STATUS
      rssMb: await rssMb(pid),
    };
  } finally {
    await conn.end();
  }
}

async function measureListing(url: string, count: number): Promise<ManyTablesRun["listing"]> {
  const first: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    const res = await fetch(`${url}/v1/tables`);
    if (res.status !== 200) throw new Error(`GET /v1/tables: ${res.status} ${await res.text()}`);
    await res.json();
    first.push(performance.now() - t);
  }
  const t = performance.now();
  let cursor: string | undefined;
  let pages = 0;
  let listed = 0;
  do {
    const res = await fetch(`${url}/v1/tables${cursor === undefined ? "" : `?cursor=${encodeURIComponent(cursor)}`}`);
    if (res.status !== 200) throw new Error(`GET /v1/tables: ${res.status} ${await res.text()}`);
    const page = (await res.json()) as { tables: unknown[]; next?: string | null };
    pages++;
    listed += page.tables.length;
    cursor = page.next ?? undefined;
  } while (cursor !== undefined);
  if (listed !== count) throw new Error(`the listing had ${listed} tables, not ${count}`);
  return { firstPageMs: summarize(first).p50, allPagesMs: performance.now() - t, pages, listed };
}

async function measureActive(
  url: string,
  pid: number,
  active: string[],
  subscribers: Map<string, Subscriber>,
  sizes: ManyTablesSizes,
): Promise<ManyTablesRun["active"]> {
  const ratePerTable = ACTIVE_RATE / active.length;
  const periodMs = (BATCH / ratePerTable) * 1000; // each table's requests are this far apart
  const rounds = Math.round(((sizes.activeWarmupSec + sizes.activeSec) * 1000) / periodMs);
  const warmupRounds = Math.round((sizes.activeWarmupSec * 1000) / periodMs);
  const sentAt = new Map<number, number>(); // request number → send time
  const seen = new Set<string>();
  const latencies: number[] = [];
  const enqueueMs: number[] = [];
  let received = 0;
  let duplicates = 0;
  for (const name of active) {
    subscribers.get(name)!.onMessage = (p, at) => {
      const key = `${p.r}-${p.i}`;
      if (seen.has(key)) {
        duplicates++;
        return;
      }
      seen.add(key);
      received++;
      if (p.r >= warmupRounds * active.length) latencies.push(at - sentAt.get(p.r)!);
    };
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  await scrape(url); // starts the server's event-loop window
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const cpu0 = await snapshot({ pids: [pid] });
  const start = performance.now();
  const requests: Array<Promise<void>> = [];
  let failed = 0;
  for (let round = 0; round < rounds; round++) {
    for (let t = 0; t < active.length; t++) {
      const r = round * active.length + t;
      const due = start + round * periodMs + (t * periodMs) / active.length;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      const messages = Array.from({ length: BATCH }, (_, i) => ({ payload: { r, i } }));
      const sent = performance.now();
      sentAt.set(r, sent);
      requests.push(
        post(agent, `${url}/v1/tables/${active[t]}/messages`, JSON.stringify({ messages })).then(
          (status) => {
            if (status !== 201) failed += BATCH;
            else if (r >= warmupRounds * active.length) enqueueMs.push(performance.now() - sent);
          },
          () => void (failed += BATCH),
        ),
      );
    }
  }
  await Promise.all(requests);
  agent.destroy();
  const sent = rounds * active.length * BATCH - failed;
  const deadline = performance.now() + 30_000;
  while (received < sent && performance.now() < deadline) await sleep(50);
  const elapsed = performance.now() - start;
  const cpu1 = await snapshot({ pids: [pid] });
  loop.disable();
  const serverLoopMaxMs = metricSum(await scrape(url), "nodejs_eventloop_lag_max_seconds") * 1000;
  for (const name of active) delete subscribers.get(name)!.onMessage;
  return {
    tables: active.length,
    ratePerTable,
    sent,
    received,
    missing: Math.max(0, sent - received) + failed,
    duplicates,
    enqueueToDeliveryMs: summarize(latencies),
    enqueueMs: summarize(enqueueMs),
    cpuPercent: ((cpuMsBetween(cpu0, cpu1) ?? NaN) / elapsed) * 100,
    rssMb: await rssMb(pid),
    serverLoopMaxMs,
    benchLoopMaxMs: loop.max / 1e6,
  };
}

/** POSTs a JSON body on a keep-alive agent (lighter than fetch at a thousand requests a second); resolves with the status. */
function post(agent: http.Agent, url: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: "POST", agent, headers: { "content-type": "application/json" } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function tableCaches(): Promise<ManyTablesResult["mariadb"]> {
  const conn = await createConnection(benchDatabaseUrl("mysql"));
  try {
    const [rows] = await conn.query("SHOW GLOBAL VARIABLES WHERE Variable_name IN ('table_open_cache', 'table_definition_cache')");
    const v = new Map((rows as Array<{ Variable_name: string; Value: string }>).map((r) => [r.Variable_name, Number(r.Value)]));
    return { tableOpenCache: v.get("table_open_cache") ?? NaN, tableDefinitionCache: v.get("table_definition_cache") ?? NaN };
  } finally {
    await conn.end();
  }
}

async function rssMb(pid: number): Promise<number> {
  const stat = await procStat(pid);
  return stat ? (Number(stat.fields[21]) * 4096) / 2 ** 20 : NaN;
}

async function inParallel<T>(items: T[], atOnce: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(atOnce, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
