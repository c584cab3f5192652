/**
 * MariaDB's instructions per message for tablemq's two hot statements (the INSERT of a batch and its ack
 * UPDATE), counted by callgrind: the same count run after run, where this box's speed moves by ±20 % within
 * minutes, so a change to what tablemq sends the database can be judged by one run instead of an A/B of many.
 *
 * It needs a second MariaDB under valgrind (the system's own keeps serving; this one takes about a minute
 * to start, and runs some 50× slower):
 *   mariadb-install-db --no-defaults --datadir=/tmp/mdb2/data --user=root --auth-root-authentication-method=normal
 *   valgrind --tool=callgrind --callgrind-out-file=/tmp/mdb2/cg.%p /usr/sbin/mariadbd --no-defaults \
 *     --datadir=/tmp/mdb2/data --port=3307 --socket=/tmp/mdb2/sock --user=root --character-set-server=utf8mb4 \
 *     --collation-server=utf8mb4_general_ci --innodb-use-native-aio=0 --innodb-buffer-pool-size=128M \
 *     --innodb-buffer-pool-size-max=256M &
 * (valgrind has no io_uring, hence native AIO off; the default buffer-pool maximum cannot be mapped under it.)
 *
 * `npx tsx bench/tools/db-instructions.ts [--port 3307] [--rounds 20] [--out-dir /tmp/mdb2]`
 *
 * For each table form (table-form.ts: neither saving, each alone, both) on a fresh table made as tablemq
 * makes it: two untimed rounds, then `callgrind_control -z`, `rounds` × (insertMessages of 100 benchmark
 * payloads, ack of those 100 ids) through the store's own statements on one connection, `callgrind_control
 * -d`. Prints instructions per message in the statements (dispatch_command, inclusive) and in all threads
 * (the background ones, purge and log writing, vary by a few per cent).
 * Not part of `npm run bench`: a tool for the next optimisation, not a result.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { sql } from "kysely";
import { resolveOptions } from "../../src/options.js";
import { createMysqlDatabase } from "../../src/store/mysql/connect.js";
import { createTableStatement } from "../../src/store/mysql/ddl.js";
import { ack, insertMessages } from "../../src/store/mysql/messages.js";
import { PLAIN_FORM, type TableForm } from "../../src/store/mysql/table-form.js";
import { makePayload, payloadText } from "../lib/payload.js";

const flags = new Command()
  .option("--port <n>", "the MariaDB under callgrind", "3307")
  .option("--rounds <n>", "counted rounds of 100 messages per form", "20")
  .option("--out-dir <dir>", "where callgrind writes its files (--callgrind-out-file)", "/tmp/mdb2")
  .parse()
  .opts<{ port: string; rounds: string; outDir: string }>();
const rounds = Number(flags.rounds);
const BATCH = 100;

const FORMS: Array<[string, TableForm]> = [
  ["plain (quoted payloads, checked updates)", PLAIN_FORM],
  ["hex payloads", { ...PLAIN_FORM, hexPayload: true }],
  ["unchecked updates", { ...PLAIN_FORM, uncheckedUpdates: true }],
  ["both (tablemq's form of its own tables on MariaDB)", { ...PLAIN_FORM, hexPayload: true, uncheckedUpdates: true }],
];

const pid = execFileSync("pgrep", ["-f", `valgrind.*mariadbd.*--port=${flags.port}`])
  .toString()
  .trim()
  .split("\n")[0];
if (!pid) throw new Error(`no MariaDB under valgrind on port ${flags.port}`);
const db = createMysqlDatabase(`mysql://root@127.0.0.1:${flags.port}/mysql`, { connectionLimit: 1 });
await sql`CREATE DATABASE IF NOT EXISTS tablemq_callgrind`.execute(db);
await db.destroy();
const bench = createMysqlDatabase(`mysql://root@127.0.0.1:${flags.port}/tablemq_callgrind`, {
  connectionLimit: 1,
  statementTimeoutMs: 600_000,
});

let nextId = 1_000_000n;
let seq = 0;
async function round(table: string, form: TableForm): Promise<void> {
  const rows = Array.from({ length: BATCH }, () => ({
    id: String(nextId++),
    priority: 50,
    timeNext: Date.now(),
    epoch: 1,
    payload: payloadText(makePayload(0, seq++)),
  }));
  await insertMessages(bench, table, rows, form);
  await ack(
    bench,
    table,
    rows.map((r) => r.id),
    Date.now(),
    form,
  );
}

function callgrind(command: "-z" | "-d"): void {
  execFileSync("callgrind_control", [command, pid!], { stdio: "ignore" });
}

/** The newest dump of this process, and its instructions in all threads and in dispatch_command. */
function lastDump(): { all: number; statements: number } {
  const file = readdirSync(flags.outDir)
    .filter((f) => f.startsWith(`cg.${pid}.`))
    .map((f) => join(flags.outDir, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  if (!file) throw new Error(`no callgrind dump of ${pid} in ${flags.outDir}`);
  const annotated = execFileSync("callgrind_annotate", ["--inclusive=yes", file], { maxBuffer: 64 << 20 }).toString();
  const count = (pattern: RegExp) => Number(pattern.exec(annotated)?.[1]?.replaceAll(",", "") ?? NaN);
  return { all: count(/^\s*([\d,]+) .*PROGRAM TOTALS/m), statements: count(/^\s*([\d,]+) .*dispatch_command\(/m) };
}

try {
  const messages = rounds * BATCH;
  console.log(`MariaDB under callgrind (pid ${pid}), ${rounds} rounds of ${BATCH} messages per form; instructions per message:`);
  let base: number | undefined;
  for (const [name, form] of FORMS) {
    const table = `cg_${Date.now().toString(36)}`;
    await createTableStatement(table, resolveOptions()).execute(bench);
    for (let i = 0; i < 2; i++) await round(table, form);
    callgrind("-z");
    for (let i = 0; i < rounds; i++) await round(table, form);
    callgrind("-d");
    await sql`DROP TABLE ${sql.table(table)}`.execute(bench);
    const { all, statements } = lastDump();
    base ??= statements;
    const change = statements === base ? "" : ` (${(((statements - base) / base) * 100).toFixed(1)} % against plain)`;
    console.log(`  ${name}: statements ${Math.round(statements / messages)}${change}, all threads ${Math.round(all / messages)}`);
  }
} finally {
  await bench.destroy();
}
