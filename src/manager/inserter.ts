import type { Clock } from "../clock.js";
import { OutcomeUnknownError, OverloadedError, RejectedWriteError, UnavailableError } from "../errors.js";
import type { IdGenerator } from "../ids.js";
import type { InsertTicket } from "./insert-path.js";
import type { MessageStore } from "../store/types.js";
import type { MessageRow, NewMessage } from "../model/messages.js";
import { Coalescer } from "../coalescer.js";
import type { ByteBudget } from "./byte-budget.js";
import { type EnqueueMessage, refusedMessage, toNewMessage } from "../model/enqueue.js";
import { payloadBytes } from "../payload.js";
import type { Retried } from "./retry.js";
import { ValidationError } from "../model/validate.js";

export type { EnqueueMessage };

/**
 * Most rows in one coalesced INSERT, and INSERTs per table running at once. Two, not one per producer:
 * requests that arrive while both run share the next statement, so under load MariaDB parses, commits
 * and fsyncs fewer statements. With the settler's one batch at once, against four and two (bench/tools/ab.ts,
 * two runs of 10-12 pairs): MariaDB -1.0 to -1.2 us/msg, 1.7-3.1 % more msg/s. One INSERT at once saved
 * more in MariaDB but serialised the INSERTs (-3.6 % msg/s).
 */
const INSERT_STATEMENT_ROWS = 1_000;
export const INSERTS_AT_ONCE = 2;
/**
 * Most payload text in one coalesced INSERT (a lone request may exceed it). Without it, 1 MB requests of
 * 100 KiB payloads arriving together shared statements of up to 1,000 rows: 200 MB of SQL text (hex), the
 * server's memory up by ~200 MB in the bench's large-payload enqueue, and past MariaDB's default
 * max_allowed_packet (16 MiB) a failed statement.
 */
const INSERT_STATEMENT_PAYLOAD_BYTES = 4 * 1024 * 1024;

export interface EnqueueResult {
  /** In request order. */
  ids: string[];
  duplicates: string[];
}

/**
 * What became of one row of an insert: written by it; a duplicate (the id existed); or found (the id
 * existed when a retry ran after an attempt whose answer was lost: that attempt may have written it).
 */
type RowOutcome = "written" | "duplicate" | "found";

/** Runs a write, sending it again while its outcome is unknown (the manager's retry, retry.ts). */
export type RetryWrite = <T>(what: string, ids: readonly string[], write: () => Promise<T>) => Promise<Retried<T>>;

export interface InserterDeps {
  table: string;
  store: MessageStore;
  clock: Clock;
  ids: IdGenerator;
  /** Rows waiting for an INSERT per table before enqueues get 429. */
  maxQueuedInserts: number;
  /** Engine-wide: the payload bytes of enqueues accepted and not yet settled (byte-budget.ts). */
  budget: ByteBudget;
  /** An enqueue that cannot start writing within this is refused with 503 (never sent). */
  writeTimeoutMs: number;
  retry: RetryWrite;
  /** The insert path's claim on the ids, taken before the INSERT is sent (InsertPath.begin). */
  begin: (ids: Iterable<string>, due: number) => InsertTicket;
}

/**
 * A table's enqueue path, one write path beside the Settler's: validates messages, gives them ids, claims
 * them (InsertPath), writes them through the table's insert coalescer (concurrent enqueues share INSERT
 * statements), leased when a subscriber can take them at once, and offers the committed rows to the cache.
 */
export class Inserter {
  private readonly coalescer: Coalescer<NewMessage, RowOutcome>;

  constructor(private readonly deps: InserterDeps) {
    this.coalescer = this.makeCoalescer();
  }

  async enqueue(messages: readonly EnqueueMessage[]): Promise<EnqueueResult> {
    if (messages.length === 0) throw new ValidationError("messages", "must not be empty");
    const now = this.deps.clock.now();
    const maxId = this.deps.store.maxMessageId(this.deps.table);
    const nextId = () => this.deps.ids.next();
    const rows = messages.map((msg, i) => toNewMessage(msg, i, now, maxId, nextId));
    let bytes = 0;
    for (const r of rows) bytes += payloadBytes(r.payload);
    const { budget } = this.deps;
    if (!budget.take(bytes, budget.usedBytes === 0)) {
      throw new OverloadedError(`${budget.usedBytes} bytes of enqueued payloads are already waiting for the database; retry later`);
    }
    try {
      return await this.write(messages, rows, now);
    } finally {
      budget.give(bytes);
    }
  }

  private async write(messages: readonly EnqueueMessage[], rows: NewMessage[], now: number): Promise<EnqueueResult> {
    let due = 0;
    for (const r of rows) if (r.timeNext <= now) due++;
    // Before the INSERT is sent: a poll may find the rows before its answer arrives (InsertClaims).
    const ticket = this.deps.begin(
      rows.map((r) => r.id),
      due,
    );
    const { leasedUntil, heldUntil } = ticket;
    // When the manager grants it, the due rows are written leased (InsertPath.leaseForInsert) or held
    // (holdForInsert). Every kind of row has one shape (every field, in one order), as each of them is read
    // on the way to the database.
    const written =
      leasedUntil !== undefined
        ? rows.map((r) => (r.timeNext <= now ? { id: r.id, priority: r.priority, timeNext: leasedUntil, epoch: 1, payload: r.payload } : r))
        : heldUntil !== undefined
          ? rows.map((r) => (r.timeNext <= now ? { id: r.id, priority: r.priority, timeNext: heldUntil, epoch: 0, payload: r.payload } : r))
          : rows;
    const outcomes = await this.coalescer.submit(written).catch((err: unknown) => {
      void ticket.done([]);
      if (err instanceof RejectedWriteError) throw refusedMessage(err, rows);
      // The client needs the ids (the server made most of them) to resend the same messages safely.
      throw err instanceof OutcomeUnknownError
        ? new OutcomeUnknownError(
            err.message,
            rows.map((r) => r.id),
            { cause: err.cause ?? err },
          )
        : err;
    });
    const fresh: MessageRow[] = [];
    const duplicates: string[] = [];
    rows.forEach((r, i) => {
      const outcome = outcomes[i];
      // A client's id found by a retry may have been there before this request: say so. A server-made id
      // cannot have been: it is this request's message.
      if (outcome === "duplicate" || (outcome === "found" && messages[i]!.id !== undefined)) {
        duplicates.push(r.id);
        return;
      }
      // Found: written by the attempt whose answer was lost, and maybe delivered or acked since; the poller
      // delivers it when it is due, not the cache.
      if (outcome === "found") return;
      const row: MessageRow = { id: r.id, priority: r.priority, timeNext: r.timeNext, epoch: 0, payload: r.payload };
      if (written[i] !== r) {
        if (leasedUntil !== undefined) row.leasedUntil = leasedUntil;
        else row.heldUntil = heldUntil;
      }
      fresh.push(row);
    });
    void ticket.done(fresh); // committed: hand to the cache without making the producer wait for it
    return { ids: rows.map((r) => r.id), duplicates };
  }

  /**
   * The table's insert coalescer: concurrent enqueues share INSERT statements. Its result per row is a
   * RowOutcome. A request that cannot get a writer within writeTimeoutMs is refused (never sent).
   */
  private makeCoalescer(): Coalescer<NewMessage, RowOutcome> {
    const { store, clock, writeTimeoutMs, retry, table } = this.deps;
    return new Coalescer<NewMessage, RowOutcome>({
      maxItems: INSERT_STATEMENT_ROWS,
      maxWeight: { of: (row) => payloadBytes(row.payload), max: INSERT_STATEMENT_PAYLOAD_BYTES },
      maxQueued: this.deps.maxQueuedInserts,
      concurrency: INSERTS_AT_ONCE,
      write: async (rows) => {
        const { value, retried } = await retry(`insert into ${table}`, [], () => store.insertMessages(table, rows));
        const written = new Set(value.inserted);
        return rows.map((r) => (written.delete(r.id) ? "written" : retried ? "found" : "duplicate"));
      },
      maxWait: {
        ms: writeTimeoutMs,
        clock,
        error: () => new UnavailableError(`the database took no write for ${writeTimeoutMs} ms`),
      },
    });
  }
}
