/**
 * Helpers shared by the fault suite (test/faults/*.test.ts): a WebSocket consumer that acks over the socket
 * and knows which of its acks the server confirmed, a bounded HTTP producer, figures written for
 * RELIABILITY.md, a seeded PRNG, and direct database checks.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Kysely, sql, SqliteDialect } from "kysely";
import { createMysqlStore } from "../../src/store/mysql/store.js";
import { idOf } from "../../src/store/sqlite/keys.js";
import { sqlitePath } from "../../src/store/urls.js";
import { inject } from "vitest";
import WebSocket from "ws";
import { sleep } from "../support/wait.js";

let resultsDir: string | undefined;

/**
 * Where each scenario writes its figures: a directory of the run's own, $TMPDIR/tablemq-faults-XXXXXX/
 * (made by test/support/global-setup.ts, kept after the run when a scenario wrote to it).
 */
export function resultsDirectory(): string {
  resultsDir ??= inject("faultsDir") || mkdtempSync(join(tmpdir(), "tablemq-faults-"));
  return resultsDir;
}

/** Writes the scenario's figures as JSON and prints them as one line, with the file (quoted by RELIABILITY.md). */
export function recordFigures(scenario: string, figures: Record<string, unknown>): string {
  const dir = resultsDirectory();
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${scenario}.json`);
  const record = { scenario, at: new Date().toISOString(), ...figures };
  writeFileSync(file, JSON.stringify(record, null, 2) + "\n");
  console.log(`[faults] ${scenario} ${JSON.stringify(figures)} -> ${file}`);
  return file;
}

export interface Delivery {
  id: string;
  epoch: number;
  /** Date.now() when the frame arrived. */
  at: number;
  /** Which consumer got it. */
  by: string;
  payload: unknown;
}

export interface ConsumerOptions {
  /** Query maxInFlight; omitted = server default. */
  maxInFlight?: number;
  /** "ack": ack each batch over the socket (with a ref) after `ackDelayMs`; "none": never ack. */
  mode?: "ack" | "none";
  ackDelayMs?: number;
  /** Shared log of every delivery (several consumers may append to one). */
  log?: Delivery[];
  /** Ids whose ack the server confirmed (an `acked` frame for their ref); may be shared. */
  confirmed?: Set<string>;
  /** Keep each payload in the log (default true; large payloads cost memory). */
  keepPayloads?: boolean;
}

/**
 * A WebSocket subscriber over the raw protocol. Each batch is acked in one frame with a `ref`; the ids
 * count as acknowledged only when the server answers `acked` for that ref (the ack then committed).
 */
export class Consumer {
  readonly socket: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<number>;
  readonly log: Delivery[];
  readonly confirmed: Set<string>;
  /** Frames of type error. */
  readonly errors: Array<{ code: string; message: string; ref?: unknown }> = [];
  subscribed: { maxInFlight: number; batchSize: number } | undefined;
  closeCode: number | undefined;
  /** Ids delivered to this consumer (with repeats). */
  readonly received: string[] = [];
  /** Ack refs sent and not answered yet. */
  readonly pendingAcks = new Map<number, string[]>();
  private nextRef = 1;
  private readonly mode: "ack" | "none";

  constructor(
    base: string,
    table: string,
    readonly name: string,
    private readonly opts: ConsumerOptions = {},
  ) {
    this.mode = opts.mode ?? "ack";
    this.log = opts.log ?? [];
    this.confirmed = opts.confirmed ?? new Set();
    const query = opts.maxInFlight === undefined ? "" : `?maxInFlight=${opts.maxInFlight}`;
    this.socket = new WebSocket(`${base.replace(/^http/, "ws")}/v1/tables/${table}/subscribe${query}`);
    this.socket.on("error", () => {}); // a kill or a refused upgrade: seen as close / opened rejection
    this.opened = new Promise((resolve, reject) => {
      this.socket.once("open", () => resolve());
      this.socket.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      this.socket.once("close", () => reject(new Error("closed before open")));
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => this.socket.once("close", (code) => resolve((this.closeCode = code))));
    this.socket.on("message", (data) => this.onFrame(data.toString()));
  }

  /** Resolves once the `subscribed` frame arrived. */
  async ready(timeoutMs = 5_000): Promise<this> {
    await this.opened;
    const deadline = Date.now() + timeoutMs;
    while (!this.subscribed) {
      if (Date.now() > deadline || this.closeCode !== undefined) throw new Error(`${this.name}: no subscribed frame`);
      await sleep(10);
    }
    return this;
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  ack(ids: string[]): void {
    if (!this.isOpen || ids.length === 0) return;
    const ref = this.nextRef++;
    this.pendingAcks.set(ref, ids);
    this.socket.send(JSON.stringify({ type: "ack", ids, ref }));
  }

  close(): void {
    this.socket.close();
  }

  terminate(): void {
    this.socket.terminate();
  }

  private onFrame(text: string): void {
    const frame = JSON.parse(text) as Record<string, any>;
    switch (frame.type) {
      case "subscribed":
        this.subscribed = { maxInFlight: frame.maxInFlight, batchSize: frame.batchSize };
        return;
      case "messages": {
        const at = Date.now();
        const ids: string[] = [];
        for (const m of frame.messages as Array<{ id: string; epoch: number; payload: unknown }>) {
          this.log.push({ id: m.id, epoch: m.epoch, at, by: this.name, payload: this.opts.keepPayloads === false ? undefined : m.payload });
          this.received.push(m.id);
          ids.push(m.id);
        }
        if (this.mode === "ack") {
          if (this.opts.ackDelayMs) setTimeout(() => this.ack(ids), this.opts.ackDelayMs);
          else this.ack(ids);
        }
        return;
      }
      case "acked": {
        const ids = this.pendingAcks.get(frame.ref);
        this.pendingAcks.delete(frame.ref);
        for (const id of ids ?? []) this.confirmed.add(id);
        return;
      }
      case "error":
        if (frame.ref !== undefined) this.pendingAcks.delete(frame.ref); // not acked: it will come again
        this.errors.push({ code: frame.code, message: frame.message, ref: frame.ref });
        return;
    }
  }
}

export interface HttpOutcome {
  /** HTTP status, or 0 when no answer came (refused, reset, timed out). */
  status: number;
  body: any;
  /** Date.now() when the request was sent and when its answer (or failure) came. */
  sentAt: number;
  doneAt: number;
  error?: string;
}

/** One JSON request with a time limit; never throws. */
export async function request(base: string, method: string, path: string, body?: unknown, timeoutMs = 5_000): Promise<HttpOutcome> {
  const sentAt = Date.now();
  try {
    const res = await fetch(base + path, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text === "" ? undefined : JSON.parse(text);
    } catch {
      // keep the text
    }
    return { status: res.status, body: parsed, sentAt, doneAt: Date.now() };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return { status: 0, body: undefined, sentAt, doneAt: Date.now(), error: e.cause?.code ?? e.name };
  }
}

/** Rows of a message table, by id: whether acked. */
export async function tableRows(db: Kysely<any>, table: string): Promise<Map<string, { acked: boolean }>> {
  const { rows } = await sql<{ id: string; acked: number }>`
    SELECT id, time_acked IS NOT NULL AS acked FROM ${sql.table(table)}`.execute(db);
  return new Map(rows.map((r) => [String(r.id), { acked: Number(r.acked) === 1 }]));
}

/**
 * A look at a server's database from outside it, on either store: `db` for statements of one's own (the
 * simple SQL both dialects share), `rows` for a message table's rows (id → acked). A small pool on MySQL; on
 * SQLite a connection to the file beside the server's (WAL lets it in while the server writes).
 */
export interface RowsReader {
  readonly db: Kysely<any>;
  rows(table: string): Promise<Map<string, { acked: boolean }>>;
  close(): Promise<void>;
}

export function openRowsReader(url: string): RowsReader {
  const file = sqlitePath(url);
  if (file === undefined) {
    const store = createMysqlStore(url, { connectionLimit: 2 });
    return { db: store.db, rows: (table) => tableRows(store.db, table), close: () => store.close() };
  }
  let db: Kysely<any> | undefined;
  const open = () => {
    if (!db) {
      const database = new Database(file);
      database.defaultSafeIntegers(true);
      db = new Kysely<any>({ dialect: new SqliteDialect({ database }) });
    }
    return db;
  };
  return {
    get db() {
      return open();
    },
    async rows(table) {
      const { rows } = await sql<{ id: bigint; acked: bigint }>`
        SELECT id, time_acked IS NOT NULL AS acked FROM ${sql.table(table)}`.execute(open());
      return new Map(rows.map((r) => [idOf(r.id), { acked: r.acked === 1n }]));
    },
    async close() {
      await db?.destroy();
    },
  };
}

/** The payload field `k` of every row (the producers' message keys). */
export async function tableKeys(db: Kysely<any>, table: string): Promise<Set<string>> {
  const { rows } = await sql<{ k: string | null }>`
    SELECT JSON_UNQUOTE(JSON_EXTRACT(message, '$.k')) AS k FROM ${sql.table(table)}`.execute(db);
  return new Set(rows.flatMap((r) => (r.k === null ? [] : [String(r.k)])));
}

/** Count and an order-independent checksum of every column of a message table. */
export async function tableChecksum(db: Kysely<any>, table: string): Promise<string> {
  const { rows } = await sql<{ n: number; h: string | null }>`
    SELECT COUNT(*) AS n,
           SUM(CRC32(CONCAT_WS('|', id, priority, IFNULL(epoch, 'N'), IFNULL(time_next, 'N'), IFNULL(time_acked, 'N'), IFNULL(message, 'N')))) AS h
    FROM ${sql.table(table)}`.execute(db);
  return `${rows[0]?.n}:${rows[0]?.h ?? 0}`;
}

/** mulberry32, a small seeded PRNG (one source: the bench's). */
export { prng } from "../../bench/lib/prng.js";

/** Percentile (0..100) of a list of numbers; 0 for an empty list. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
