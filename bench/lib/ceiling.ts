import { type Connection, createConnection } from "mysql2/promise";
import { makePayload, payloadText } from "./payload.js";
import { summarize } from "./stats.js";

const CONNECTIONS = 4;

/** (Re)creates `table` empty, with tablemq's message-table shape (columns and poller index). */
async function freshMessageTable(conn: Connection, table: string): Promise<void> {
  await conn.query(`DROP TABLE IF EXISTS ${table}`);
  await conn.query(`CREATE TABLE ${table} (
    id BIGINT UNSIGNED NOT NULL, priority TINYINT UNSIGNED NOT NULL DEFAULT 50, epoch BIGINT NOT NULL DEFAULT 0,
    time_next BIGINT DEFAULT 0, time_acked BIGINT DEFAULT NULL, message JSON,
    PRIMARY KEY (id), INDEX poller_idx (time_acked, priority, time_next))`);
}
const BATCH = 100;

/**
 * The bare-MySQL upper bound: 4 connections, each INSERTing 100 message rows in one statement and then
 * UPDATEing them acked, as fast as the database allows. Same table shape and payload as tablemq's.
 */
export async function ceiling(databaseUrl: string, total: number): Promise<{ perSec: number; version: string }> {
  return bareMessages(databaseUrl, total, "acks");
}

/**
 * The ceiling's INSERT half, in the application's shape: the same 4 connections, each writing 100 message
 * rows per transaction (BEGIN, one INSERT, COMMIT), without acks. What tablemq/sql's enqueue in those same
 * transactions is measured against (the txn-insert workload): the difference is the helper's own cost.
 */
export async function insertCeiling(databaseUrl: string, total: number): Promise<{ perSec: number; version: string }> {
  return bareMessages(databaseUrl, total, "transactions");
}

/** The ceiling's INSERT half as the ceiling runs it: each INSERT of 100 rows autocommitted (one round trip, no BEGIN). */
export async function autocommitInsertCeiling(databaseUrl: string, total: number): Promise<{ perSec: number; version: string }> {
  return bareMessages(databaseUrl, total, "autocommit");
}

/** How bareMessages writes: INSERT then UPDATE acked (the ceiling), or INSERTs alone, in transactions or autocommitted. */
type BareShape = "acks" | "transactions" | "autocommit";

async function bareMessages(databaseUrl: string, total: number, shape: BareShape = "acks"): Promise<{ perSec: number; version: string }> {
  const table = shape === "acks" ? "bench_ceiling" : "bench_insert_ceiling";
  const admin = await createConnection(databaseUrl);
  await freshMessageTable(admin, table);
  const [rows] = await admin.query("SELECT VERSION() AS v");
  const version = (rows as Array<{ v: string }>)[0]!.v;
  const conns = await Promise.all(Array.from({ length: CONNECTIONS }, () => createConnection(databaseUrl)));
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    conns.map(async (conn, c) => {
      for (;;) {
        const base = next;
        if (base >= total) return;
        next += BATCH;
        const ids = Array.from({ length: BATCH }, (_, i) => base + i + 1);
        const now = BigInt(Date.now()) * 1_000_000n;
        const values = ids.map((id) => [id, 50, 0, now, payloadText(makePayload(c, id))]);
        const insert = () => conn.query(`INSERT INTO ${table} (id, priority, epoch, time_next, message) VALUES ?`, [values]);
        if (shape === "transactions") {
          await conn.beginTransaction();
          await insert();
          await conn.commit();
        } else {
          await insert();
          if (shape === "acks") await conn.query(`UPDATE ${table} SET time_acked = ?, time_next = NULL WHERE id IN (?)`, [now, ids]);
        }
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await Promise.all(conns.map((c) => c.end()));
  await admin.query(`DROP TABLE ${table}`);
  await admin.end();
  return { perSec: (Math.ceil(total / BATCH) * BATCH) / seconds, version };
}

/**
 * The floor under w2's latency: one connection INSERTing one message row per autocommit statement at a fixed
 * rate (w2's 500/s), as tablemq's enqueue of a single message does; each commit's time in ms. A message
 * cannot reach a subscriber before its commit returns, so this is as low as tablemq's publish→receive can go.
 */
export async function commitLatency(databaseUrl: string, ratePerSec: number, seconds: number): Promise<ReturnType<typeof summarize>> {
  const table = "bench_commit_latency";
  const conn = await createConnection(databaseUrl);
  try {
    await freshMessageTable(conn, table);
    const total = ratePerSec * seconds;
    const ms: number[] = [];
    const start = process.hrtime.bigint();
    for (let i = 0; i < total; i++) {
      const dueNs = start + BigInt(Math.round((i / ratePerSec) * 1e9));
      const waitMs = Number(dueNs - process.hrtime.bigint()) / 1e6;
      if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
      const t0 = process.hrtime.bigint();
      await conn.query(`INSERT INTO ${table} (id, time_next, message) VALUES (?, ?, ?)`, [
        i + 1,
        Date.now() * 1_000_000,
        payloadText(makePayload(0, i)),
      ]);
      if (i >= ratePerSec) ms.push(Number(process.hrtime.bigint() - t0) / 1e6); // the first second warms up, as in w2
    }
    await conn.query(`DROP TABLE ${table}`);
    return summarize(ms);
  } finally {
    await conn.end();
  }
}
