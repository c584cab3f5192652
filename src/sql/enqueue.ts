/**
 * enqueue(): messages written by the application's own statement, in its own transaction. The rows are the
 * ones the server writes (ids in its scheme, priority, due time, payload text); they become deliverable
 * when the transaction commits, and not at all if it rolls back.
 */
import { systemClock, type Clock } from "../clock.js";
import { RejectedWriteError } from "../errors.js";
import { drawAppIdNode, IdGenerator, MAX_MESSAGE_ID } from "../ids.js";
import { checkBatchSize, checkPayload, fieldOf, refusedMessage, toNewMessage } from "../model/enqueue.js";
import { DEFAULT_MAX_BATCH, DEFAULT_MAX_PAYLOAD_BYTES } from "../model/limits.js";
import type { NewMessage } from "../model/messages.js";
import { checkTableName, ValidationError } from "../model/validate.js";
import type { WakeNote } from "../model/wake.js";
import { scanValue } from "../payload.js";
import { EnqueueBody } from "../wire.js";
import { checkWire } from "../wire-check.js";
import { onTable } from "../store/mysql/ddl.js";
import { insertMessages } from "../store/mysql/messages.js";
import { kyselyOf, type SqlExecutor } from "./executor.js";

/** A message to enqueue: as over HTTP, with the payload as a value (written as JSON.stringify writes it). */
export interface SqlMessage<T = unknown> {
  payload: T;
  /** Your own id (decimal string up to 2^64 - 1): enqueueing it again is reported as a duplicate. */
  id?: string;
  /** 0..255, lower first; 50 by default. */
  priority?: number;
  delayMs?: number;
  /** Epoch ms; not with delayMs. */
  deliverAt?: number;
}

/** The limits of the server's HTTP API, by default its defaults: set them as you set the server's. */
export interface SqlLimits {
  /** Most messages (or ids and receipts) per call; TABLEMQ_MAX_BATCH, default 1000. */
  maxBatch?: number;
  /** Largest payload, UTF-8 bytes of its JSON; TABLEMQ_MAX_PAYLOAD_BYTES, default 262144. */
  maxPayloadBytes?: number;
}

export interface SqlOptions extends SqlLimits {
  /** Now, for due times and acks (tests); the system clock by default. Ids are made on the system clock. */
  clock?: Clock;
}

/** What a call changed, for a notifier to tell the server after the commit (notify.ts). */
export interface Change {
  table: string;
  wake: WakeNote;
}

export interface Enqueued extends Change {
  /** Every message's id, in the order given. */
  ids: string[];
  /** Ids you gave that were already in the table: those messages were left as they were. */
  duplicates: string[];
}

/** Attempts at a generated id another application made first (each with a newly drawn id node). */
const ID_ATTEMPTS = 3;

/** This process's ids, on the system clock: in the applications' range of id nodes, which no server uses (ids.ts). */
const ids = new IdGenerator(systemClock, Math.random, drawAppIdNode());

/**
 * Inserts `messages` into message table `table` on `executor` (in its transaction, if one is open). Checks
 * them as the server's HTTP API does, with the same errors (TablemqError: `validation_failed`,
 * `payload_too_large`, `table_not_found`), before anything is written. After your commit, tell the server
 * (notify.ts) for a delivery in milliseconds; otherwise it finds them at its next poll.
 */
export async function enqueue<T>(
  executor: SqlExecutor,
  table: string,
  messages: ReadonlyArray<SqlMessage<T>>,
  options: SqlOptions = {},
): Promise<Enqueued> {
  checkTableName(table);
  // In the HTTP route's order: its body schema, the batch size, each payload, then each message's fields.
  checkWire(EnqueueBody, { messages }, "body");
  checkBatchSize("messages", messages.length, options.maxBatch ?? DEFAULT_MAX_BATCH);
  const clock = options.clock ?? systemClock;
  const maxBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  const now = clock.now();
  const nextId = () => ids.next();
  const given = new Set<string>();
  const rows = messages.map((m, i) => {
    const payload = checkPayload(i, payloadText(m.payload, i), maxBytes);
    if (m.id !== undefined) given.add(m.id);
    return toNewMessage(
      { id: m.id, priority: m.priority, delayMs: m.delayMs, deliverAt: m.deliverAt, payload },
      i,
      now,
      MAX_MESSAGE_ID,
      nextId,
    );
  });
  const db = kyselyOf(executor);
  const duplicates: string[] = [];
  let pending: NewMessage[] = rows;
  for (let attempt = 1; pending.length > 0; attempt++) {
    const result = await write(db, table, pending, rows);
    const taken = new Set(result.duplicates);
    duplicates.push(...result.duplicates.filter((id) => given.has(id)));
    // An id this process made, already in the table: another application's; the message gets a new id.
    pending = pending.filter((r) => taken.has(r.id) && !given.has(r.id));
    if (pending.length === 0) break;
    if (attempt >= ID_ATTEMPTS) throw new Error(`tablemq/sql: ${pending.length} generated ids were taken ${ID_ATTEMPTS} times`);
    ids.setNode(drawAppIdNode());
    for (const r of pending) r.id = ids.next();
  }
  const dueAt = [...new Set(rows.filter((r) => r.timeNext > now).map((r) => r.timeNext))];
  return { table, ids: rows.map((r) => r.id), duplicates: [...new Set(duplicates)], wake: dueAt.length > 0 ? { dueAt } : {} };
}

/** Inserts `pending`, some of `all` (the call's messages, whose positions a refusal names). */
async function write(db: Parameters<typeof insertMessages>[0], table: string, pending: NewMessage[], all: NewMessage[]) {
  try {
    return await onTable(table, insertMessages(db, table, pending));
  } catch (err) {
    throw err instanceof RejectedWriteError ? refusedMessage(err, all) : err;
  }
}

/** The payload's JSON text and its scan (undefined when there is no payload: JSON.stringify gives nothing). */
function payloadText(value: unknown, i: number): { text: string; scanned: ReturnType<typeof scanValue> } | undefined {
  let text: string | undefined;
  try {
    text = JSON.stringify(value) as string | undefined;
  } catch (err) {
    throw new ValidationError(fieldOf(i, "payload"), `cannot be written as JSON: ${(err as Error).message}`);
  }
  return text === undefined ? undefined : { text, scanned: scanValue(text, 0) };
}
