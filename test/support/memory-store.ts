import { TableNotFoundError } from "../../src/errors.js";
import { payloadBytes } from "../../src/payload.js";
import { rowsWithin } from "../../src/store/due-rows.js";
import { MAX_MESSAGE_ID } from "../../src/ids.js";
import { OutcomeUnknownError } from "../../src/errors.js";
import { backoffMs, msToNs } from "../../src/model/backoff.js";
import { ValidationError } from "../../src/model/validate.js";
import { MAX_REASON_CHARS } from "../../src/model/limits.js";
import type { TableOptions } from "../../src/options.js";
import type {
  BackoffSpec,
  BrowsedMessage,
  BrowsePage,
  BrowseQuery,
  DeliveryChange,
  DeadLetterPage,
  DeadMessage,
  DiscoveredTable,
  DueRows,
  FencedResult,
  InsertResult,
  MessageState,
  MessageStore,
  RedriveResult,
  Settlement,
  SettleGroup,
  SweepQuery,
  SweepResult,
  TableStats,
  WebhookConfig,
  WebhookStore,
} from "../../src/store/types.js";
import type { ClaimRow, Delivery, MessageRow, NewMessage } from "../../src/model/messages.js";

interface StoredRow {
  id: string;
  priority: number;
  epoch: number;
  timeNext: number | null;
  timeAcked: number | null;
  payload: string;
}

interface StoredTable {
  options: TableOptions;
  rows: Map<string, StoredRow>;
  dead: Map<string, DeadMessage>;
}

type Op =
  | "readDue"
  | "claim"
  | "postpone"
  | "reschedule"
  | "ack"
  | "purge"
  | "sweep"
  | "deleteUnacked"
  | "insertMessages"
  | "updateDeliveries"
  | "deadLetter";

/**
 * The MessageStore contract in memory, for the manager's unit tests. It evaluates the same backoff formula
 * as the SQL store, and lets a test make an operation fail or hang (`failNext`, `hold`), take effect and
 * lose its answer (`loseAnswerNext`, as a dropped connection after the statement was sent) or answer late
 * (`holdAnswer`), and count calls.
 */
export class MemoryStore implements MessageStore, WebhookStore {
  readonly tables = new Map<string, StoredTable>();
  /** Webhook configurations by "table name". */
  readonly webhooks = new Map<string, WebhookConfig>();
  readonly calls: Record<Op, number> = {
    sweep: 0,
    deleteUnacked: 0,
    readDue: 0,
    claim: 0,
    postpone: 0,
    reschedule: 0,
    ack: 0,
    purge: 0,
    insertMessages: 0,
    updateDeliveries: 0,
    deadLetter: 0,
  };
  /** Claims running right now, and the most seen at once. */
  activeClaims = 0;
  maxActiveClaims = 0;
  private readonly failures = new Map<Op, number>();
  private readonly failureErrors = new Map<Op, () => Error>();
  private readonly lostAnswers = new Map<Op, number>();
  private readonly gates = new Map<Op, Promise<void>>();
  private readonly answerGates = new Map<Op, Promise<void>>();

  /** The next `times` calls of `op` fail before they change anything, with `error()` if given. */
  failNext(op: Op, times = 1, error?: () => Error): void {
    this.failures.set(op, (this.failures.get(op) ?? 0) + times);
    if (error) this.failureErrors.set(op, error);
  }

  /** The next `times` calls of `op` take effect, then fail with OutcomeUnknownError (the answer was lost). */
  loseAnswerNext(op: Op, times = 1): void {
    this.lostAnswers.set(op, (this.lostAnswers.get(op) ?? 0) + times);
  }

  /** Makes every `op` wait until the returned release function is called. */
  hold(op: Op): () => void {
    let release!: () => void;
    this.gates.set(op, new Promise<void>((r) => (release = r)));
    return () => {
      this.gates.delete(op);
      release();
    };
  }

  /**
   * Makes every `op` take effect and then wait before answering until the returned release function is
   * called: a statement that committed while its answer is still on its way, so others (a poll, an ack)
   * see its change before its caller learns of it. Only insertMessages waits on it so far.
   */
  holdAnswer(op: "insertMessages"): () => void {
    let release!: () => void;
    this.answerGates.set(op, new Promise<void>((r) => (release = r)));
    return () => {
      this.answerGates.delete(op);
      release();
    };
  }

  row(table: string, id: string): StoredRow | undefined {
    return this.tables.get(table)?.rows.get(id);
  }

  /** Test helper: puts rows straight into a table, as if inserted by someone else. */
  seed(table: string, rows: Array<Partial<StoredRow> & { id: string }>): void {
    const t = this.mustTable(table);
    for (const r of rows) {
      t.rows.set(r.id, { priority: 50, epoch: 0, timeNext: 0, timeAcked: null, payload: "{}", ...r });
    }
  }

  /** A table's id column as a signed type would hold it (the default: BIGINT UNSIGNED). */
  readonly maxIds = new Map<string, bigint>();

  maxMessageId(table: string): bigint {
    return this.maxIds.get(table) ?? MAX_MESSAGE_ID;
  }

  async discoverTables(): Promise<DiscoveredTable[]> {
    return [...this.tables].map(([name, t]) => ({ name, options: t.options }));
  }

  async createTable(table: string, options: TableOptions): Promise<boolean> {
    if (this.tables.has(table)) return false;
    this.tables.set(table, { options, rows: new Map(), dead: new Map() });
    return true;
  }

  async alterTableOptions(table: string, options: TableOptions): Promise<void> {
    this.mustTable(table).options = options;
  }

  async dropTable(table: string): Promise<boolean> {
    return this.tables.delete(table);
  }

  async describeTables(tables: readonly string[], nowMs: number): Promise<Map<string, TableStats & { dead: number }>> {
    const out = new Map<string, TableStats & { dead: number }>();
    for (const t of tables) {
      if (!this.tables.has(t)) throw new TableNotFoundError(t); // as the SQL stores say it
      out.set(t, { ...(await this.describeTable(t, nowMs)), dead: await this.countDead(t) });
    }
    return out;
  }

  async sweep(queries: readonly SweepQuery[], nowMs: number): Promise<Map<string, SweepResult>> {
    await this.enter("sweep");
    const out = new Map<string, SweepResult>();
    for (const { table, due } of queries) {
      if (!this.tables.has(table)) throw new TableNotFoundError(table); // as the SQL stores say it
      const rows = [...this.mustTable(table).rows.values()];
      const oldest = await this.oldestAck(table);
      const result: SweepResult = due ? { due: rows.some((r) => r.timeAcked === null && r.timeNext !== null && r.timeNext <= nowMs) } : {};
      if (oldest !== undefined) result.oldestAck = oldest;
      out.set(table, result);
    }
    return out;
  }

  async describeTable(table: string, nowMs: number): Promise<TableStats> {
    const stats: TableStats = { ready: 0, delayed: 0, inFlight: 0, acked: 0 };
    for (const r of this.mustTable(table).rows.values()) {
      if (r.timeAcked !== null) stats.acked++;
      else if ((r.timeNext ?? 0) <= nowMs) stats.ready++;
      else if (r.epoch === 0) stats.delayed++;
      else stats.inFlight++;
    }
    return stats;
  }

  async insertMessages(table: string, rows: NewMessage[]): Promise<InsertResult> {
    await this.enter("insertMessages");
    const t = this.mustTable(table);
    const result: InsertResult = { inserted: [], duplicates: [] };
    for (const r of rows) {
      if (t.rows.has(r.id)) {
        result.duplicates.push(r.id);
        continue;
      }
      t.rows.set(r.id, { ...r, epoch: r.epoch ?? 0, timeAcked: null });
      result.inserted.push(r.id);
    }
    const held = this.answerGates.get("insertMessages");
    if (held) await held;
    return this.answer("insertMessages", result);
  }

  /** Takes its snapshot first and then waits on a `hold`, like a slow network after the read. */
  async readDue(table: string, nowMs: number, limit: number, maxBytes = Infinity): Promise<DueRows> {
    const all = [...this.mustTable(table).rows.values()]
      .filter((r) => r.timeAcked === null && (r.timeNext ?? 0) <= nowMs)
      // Ties by id, as the SQL store's ORDER BY priority, time_next, id (decimal ids: shorter is smaller).
      .sort(
        (a, b) =>
          a.priority - b.priority ||
          (a.timeNext ?? 0) - (b.timeNext ?? 0) ||
          a.id.length - b.id.length ||
          (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
      )
      .slice(0, limit)
      .map((r) => ({ id: r.id, priority: r.priority, timeNext: r.timeNext ?? 0, epoch: r.epoch, payload: r.payload }));
    const snapshot = dueRows(
      all,
      rowsWithin(
        all.map((r) => payloadBytes(r.payload)),
        maxBytes,
      ),
    );
    await this.enter("readDue");
    return snapshot;
  }

  /**
   * As the SQL store's claim: rows still unacked, due and at the epoch read are leased; the others are left.
   * The nonce is left out of the lease (claims here cannot interleave), so tests can expect exact times.
   */
  async claim(table: string, rows: ClaimRow[], nowMs: number, spec: BackoffSpec, _nonceNs: number): Promise<string[]> {
    this.activeClaims++;
    this.maxActiveClaims = Math.max(this.maxActiveClaims, this.activeClaims);
    try {
      await this.enter("claim");
      const t = this.mustTable(table);
      const claimed: string[] = [];
      for (const d of rows) {
        const r = t.rows.get(d.id);
        if (!r || r.timeAcked !== null || r.epoch !== d.epoch) continue;
        if ((r.timeNext ?? 0) > nowMs && (d.heldUntil === undefined || r.timeNext !== d.heldUntil)) continue;
        r.timeNext = nowMs + spec.baseDelayMs + backoffMs(spec.minBackoffMs, spec.maxBackoffMs, r.epoch, spec.jitter);
        r.epoch++;
        claimed.push(d.id);
      }
      return this.answer("claim", claimed);
    } finally {
      this.activeClaims--;
    }
  }

  async reschedule(table: string, ids: string[], nowMs: number, delayMs: number): Promise<number> {
    await this.enter("reschedule");
    return this.answer(
      "reschedule",
      this.update(table, ids, (r) => applyChange(r, { kind: "reschedule", delayMs }, nowMs)),
    );
  }

  async ack(table: string, ids: string[], nowMs: number): Promise<number> {
    await this.enter("ack");
    return this.answer(
      "ack",
      this.update(table, ids, (r) => applyChange(r, { kind: "ack" }, nowMs)),
    );
  }

  /**
   * A batch is one call of each kind it holds ("ack", "reschedule", "postpone" for a backoff): counted,
   * held, failed and lost as such, all or nothing, as the SQL store's one transaction.
   */
  async settleGroups(table: string, groups: SettleGroup[]): Promise<number[]> {
    const opOf = (c: Settlement): Op => (c.kind === "ack" ? "ack" : c.kind === "reschedule" ? "reschedule" : "postpone");
    const ops = [...new Set(groups.map((g) => opOf(g.change)))];
    for (const op of ops) await this.enter(op);
    const counts = groups.map(({ ids, change, nowMs }) => this.update(table, ids, (r) => applyChange(r, change, nowMs)));
    for (const op of ops) this.answer(op, undefined);
    return counts;
  }

  async updateDeliveries(table: string, deliveries: Delivery[], nowMs: number, change: DeliveryChange): Promise<FencedResult> {
    await this.enter("updateDeliveries");
    const t = this.mustTable(table);
    const current = new Set<string>();
    const stale: Delivery[] = [];
    const unchanged: Delivery[] = [];
    for (const d of deliveries) {
      const r = t.rows.get(d.id);
      if (!r || r.timeAcked !== null) continue;
      if (r.epoch !== d.epoch + 1) stale.push(d);
      else if (change.kind === "extend" && (r.timeNext ?? 0) >= nowMs + change.byMs) unchanged.push(d);
      else current.add(d.id);
    }
    const changed = this.update(table, [...current], (r) => applyChange(r, change, nowMs));
    return unchanged.length === 0 ? { changed, stale } : { changed, stale, unchanged };
  }

  async deadLetter(table: string, ids: string[], minEpoch: number, reason: string, nowMs: number): Promise<string[]> {
    await this.enter("deadLetter");
    const t = this.mustTable(table);
    const moving = [...new Set(ids)].filter((id) => {
      const r = t.rows.get(id);
      return r !== undefined && r.timeAcked === null && r.epoch >= minEpoch;
    });
    return this.answer("deadLetter", this.bury(t, moving, reason, nowMs));
  }

  async deadLetterDeliveries(table: string, deliveries: Delivery[], reason: string, nowMs: number): Promise<FencedResult> {
    await this.enter("deadLetter");
    const t = this.mustTable(table);
    const stale: Delivery[] = [];
    const current = new Set<string>();
    for (const d of deliveries) {
      const r = t.rows.get(d.id);
      if (!r || r.timeAcked !== null) continue;
      if (r.epoch === d.epoch + 1) current.add(d.id);
      else stale.push(d);
    }
    return this.answer("deadLetter", { changed: this.bury(t, [...current], reason, nowMs).length, stale });
  }

  private bury(t: StoredTable, ids: string[], reason: string, nowMs: number): string[] {
    for (const id of ids) {
      const r = t.rows.get(id)!;
      t.rows.delete(id);
      const kept = reason.slice(0, MAX_REASON_CHARS);
      t.dead.set(id, { id, priority: r.priority, epoch: r.epoch, payload: r.payload, reason: kept, deadAt: nowMs });
    }
    return ids;
  }

  async listDead(table: string, limit: number, cursor?: string): Promise<DeadLetterPage> {
    const all = [...this.mustTable(table).dead.values()].sort((a, b) => b.deadAt - a.deadAt || (BigInt(b.id) > BigInt(a.id) ? 1 : -1));
    const start = cursor === undefined ? 0 : all.findIndex((m) => m.id === cursor) + 1;
    const messages = all.slice(start, start + limit);
    return start + limit < all.length ? { messages, next: messages.at(-1)!.id } : { messages };
  }

  async countDead(table: string): Promise<number> {
    return this.tables.get(table)?.dead.size ?? 0;
  }

  async redrive(table: string, ids: string[] | undefined, nowMs: number, limit: number): Promise<RedriveResult> {
    const t = this.mustTable(table);
    const free = [...t.dead.values()].filter((m) => !t.rows.has(m.id));
    const wanted =
      ids ??
      free
        .sort((a, b) => a.deadAt - b.deadAt)
        .slice(0, limit)
        .map((m) => m.id);
    const result: RedriveResult = { redriven: [], missing: [], conflicts: [] };
    for (const id of new Set(wanted)) {
      const m = t.dead.get(id);
      if (!m) result.missing.push(id);
      else if (t.rows.has(id)) result.conflicts.push(id);
      else {
        t.dead.delete(id);
        t.rows.set(id, { id, priority: m.priority, epoch: 0, timeNext: nowMs, timeAcked: null, payload: m.payload });
        result.redriven.push(id);
      }
    }
    return result;
  }

  async deleteUnacked(table: string, ids: string[] | undefined, limit: number): Promise<number> {
    await this.enter("deleteUnacked");
    const t = this.mustTable(table);
    const wanted = ids === undefined ? undefined : new Set(ids);
    let n = 0;
    for (const [id, r] of t.rows) {
      if (n >= limit) break;
      if (r.timeAcked === null && (wanted === undefined || wanted.has(id))) {
        t.rows.delete(id);
        n++;
      }
    }
    return n;
  }

  async purge(table: string, cutoffMs: number, limit: number): Promise<number> {
    await this.enter("purge");
    const t = this.mustTable(table);
    let n = 0;
    for (const [id, r] of t.rows) {
      if (n >= limit) break;
      if (r.timeAcked !== null && r.timeAcked < cutoffMs) {
        t.rows.delete(id);
        n++;
      }
    }
    return n;
  }

  async oldestAck(table: string): Promise<number | undefined> {
    let oldest: number | undefined;
    for (const r of this.mustTable(table).rows.values()) {
      if (r.timeAcked !== null && (oldest === undefined || r.timeAcked < oldest)) oldest = r.timeAcked;
    }
    return oldest;
  }

  async dueTimes(table: string, afterMs: number, limit: number, ids?: string[]): Promise<number[]> {
    const t = this.mustTable(table);
    const rows = ids === undefined ? [...t.rows.values()] : ids.flatMap((id) => t.rows.get(id) ?? []);
    const times = new Set(rows.filter((r) => r.timeAcked === null && (r.timeNext ?? 0) > afterMs).map((r) => r.timeNext ?? 0));
    return [...times].sort((a, b) => a - b).slice(0, limit);
  }

  /** As src/store/mysql/browse.ts: the same orders, and cursors of the same shape (`<time_next ns>:<id>`, `<id>`). */
  async browse(table: string, query: BrowseQuery, nowMs: number): Promise<BrowsePage> {
    const keyOf = (r: StoredRow): [bigint, bigint] => [query.order === "next" ? msToNs(r.timeNext ?? 0) : 0n, BigInt(r.id)];
    const after = (a: [bigint, bigint], b: [bigint, bigint]) =>
      query.order === "next" ? a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]) : a[1] < b[1];
    let cursor: [bigint, bigint] | undefined;
    if (query.cursor !== undefined) {
      const m = (query.order === "next" ? /^(-?[0-9]+):([0-9]+)$/ : /^()([0-9]+)$/).exec(query.cursor);
      if (!m) throw new ValidationError("cursor", `is not a cursor of order "${query.order}", got ${JSON.stringify(query.cursor)}`);
      cursor = [BigInt(m[1] || 0), BigInt(m[2]!)];
    }
    const rows = [...this.mustTable(table).rows.values()]
      .filter((r) => r.timeAcked === null && (query.state === undefined || stateAt(r, nowMs) === query.state))
      .filter((r) => cursor === undefined || after(keyOf(r), cursor))
      .sort((a, b) => (after(keyOf(a), keyOf(b)) ? 1 : -1));
    const messages = rows.slice(0, query.limit).map((r) => browsed(r, nowMs));
    if (rows.length <= query.limit) return { messages };
    const [timeNext, id] = keyOf(rows[query.limit - 1]!);
    return { messages, next: query.order === "next" ? `${timeNext}:${id}` : String(id) };
  }

  async getMessage(table: string, id: string, nowMs: number): Promise<BrowsedMessage | undefined> {
    const r = this.mustTable(table).rows.get(id);
    return r && r.timeAcked === null ? browsed(r, nowMs) : undefined;
  }

  async listWebhooks(): Promise<WebhookConfig[]> {
    return [...this.webhooks.values()]
      .map((c) => ({ ...c }))
      .sort((a, b) => (a.table === b.table ? (a.name < b.name ? -1 : 1) : a.table < b.table ? -1 : 1));
  }

  async putWebhook(config: WebhookConfig): Promise<boolean> {
    const key = `${config.table} ${config.name}`;
    const existing = this.webhooks.get(key);
    this.webhooks.set(key, { ...config, createdAt: existing?.createdAt ?? config.createdAt });
    return !existing;
  }

  async deleteWebhook(table: string, name: string): Promise<boolean> {
    return this.webhooks.delete(`${table} ${name}`);
  }

  async deleteWebhooksOfMissingTables(table?: string): Promise<number> {
    let n = 0;
    for (const [key, c] of this.webhooks) {
      if ((table === undefined || c.table === table) && !this.tables.has(c.table)) {
        this.webhooks.delete(key);
        n++;
      }
    }
    return n;
  }

  async ping(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {}

  private update(table: string, ids: string[], change: (r: StoredRow) => void): number {
    const t = this.mustTable(table);
    let n = 0;
    for (const id of new Set(ids)) {
      const r = t.rows.get(id);
      if (!r || r.timeAcked !== null) continue;
      change(r);
      n++;
    }
    return n;
  }

  private async enter(op: Op): Promise<void> {
    this.calls[op]++;
    const gate = this.gates.get(op);
    if (gate) await gate;
    const left = this.failures.get(op) ?? 0;
    if (left > 0) {
      this.failures.set(op, left - 1);
      throw this.failureErrors.get(op)?.() ?? new Error(`injected ${op} failure`);
    }
  }

  /** The result of an operation that took effect, unless its answer is to be lost. */
  private answer<T>(op: Op, result: T): T {
    const left = this.lostAnswers.get(op) ?? 0;
    if (left > 0) {
      this.lostAnswers.set(op, left - 1);
      throw new OutcomeUnknownError(`injected: ${op} took effect, its answer was lost`);
    }
    return result;
  }

  private mustTable(table: string): StoredTable {
    const t = this.tables.get(table);
    if (!t) throw new Error(`no table ${table}`);
    return t;
  }
}

/** An unacked row's state at `nowMs`, as describeTable counts it. */
function stateAt(r: StoredRow, nowMs: number): MessageState {
  if ((r.timeNext ?? 0) <= nowMs) return "ready";
  return r.epoch === 0 ? "delayed" : "inFlight";
}

function browsed(r: StoredRow, nowMs: number): BrowsedMessage {
  const { id, priority, epoch, payload } = r;
  return { id, priority, epoch, dueAt: r.timeNext ?? 0, state: stateAt(r, nowMs), payload, acked: false };
}

/** A change to an unacked row, as messages.ts `assignment` makes it in SQL. */
function applyChange(r: StoredRow, change: DeliveryChange, nowMs: number): void {
  switch (change.kind) {
    case "ack":
      r.timeAcked = nowMs;
      r.timeNext = null;
      return;
    case "reschedule":
      r.timeNext = nowMs + change.delayMs;
      return;
    case "backoff": {
      const { baseDelayMs, minBackoffMs, maxBackoffMs, jitter } = change.spec;
      r.timeNext = nowMs + baseDelayMs + backoffMs(minBackoffMs, maxBackoffMs, r.epoch, jitter);
      return;
    }
    case "extend":
      r.timeNext = Math.max(r.timeNext ?? 0, nowMs + change.byMs);
      return;
    case "release":
      r.timeNext = nowMs;
      r.epoch--;
      return;
  }
}

/** The first `n` rows, marked `cut` when rows were left out (as the SQL store marks its bounded read). */
function dueRows(rows: MessageRow[], n: number): DueRows {
  if (n >= rows.length) return rows;
  const kept: DueRows = rows.slice(0, n);
  kept.cut = true;
  return kept;
}
