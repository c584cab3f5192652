import { createConnection } from "mysql2/promise";
import { makePayload } from "./payload.js";

const CONNECTIONS = 4;
const BATCH = 100;

/**
 * The bare-MySQL upper bound: 4 connections, each INSERTing 100 message rows in one statement and then
 * UPDATEing them acked, as fast as the database allows. Same table shape and payload as tablemq's.
 */
export async function ceiling(databaseUrl: string, total: number): Promise<{ perSec: number; version: string }> {
  const table = "bench_ceiling";
  const admin = await createConnection(databaseUrl);
  await admin.query(`DROP TABLE IF EXISTS ${table}`);
  await admin.query(`CREATE TABLE ${table} (
    id BIGINT UNSIGNED NOT NULL, priority TINYINT UNSIGNED NOT NULL DEFAULT 50, epoch BIGINT NOT NULL DEFAULT 0,
    time_next BIGINT DEFAULT 0, time_acked BIGINT DEFAULT NULL, message JSON,
    PRIMARY KEY (id), INDEX poller_idx (time_acked, priority, time_next))`);
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
        const values = ids.map((id) => [id, 50, 0, now, makePayload(c, id)]);
        await conn.query(`INSERT INTO ${table} (id, priority, epoch, time_next, message) VALUES ?`, [values]);
        await conn.query(`UPDATE ${table} SET time_acked = ?, time_next = NULL WHERE id IN (?)`, [now, ids]);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await Promise.all(conns.map((c) => c.end()));
  await admin.query(`DROP TABLE ${table}`);
  await admin.end();
  return { perSec: Math.ceil(total / BATCH) * BATCH / seconds, version };
}
