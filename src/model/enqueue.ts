/**
 * What an enqueue may ask for, and the row it becomes: one rule for every way in (the server's HTTP and
 * in-process enqueue, and `tablemq/sql` in the application's own transaction).
 */
import { PayloadTooLargeError, type RejectedWriteError } from "../errors.js";
import { isMessageId, MAX_MESSAGE_ID } from "../ids.js";
import { MAX_EPOCH_MS, PRIORITY } from "./limits.js";
import type { NewMessage } from "./messages.js";
import { payloadProblem, type ScannedValue } from "../payload.js";
import { badId, ValidationError } from "./validate.js";

export interface EnqueueMessage {
  id?: string;
  priority?: number;
  delayMs?: number;
  /** Epoch ms; not with delayMs. */
  deliverAt?: number;
  /** Raw JSON text. */
  payload: string;
}

/**
 * The row message `i` of a request becomes at `now`, or a ValidationError naming its field. `maxId` is the
 * largest id the table's column holds; `nextId` makes an id for a message that brought none.
 */
export function toNewMessage(msg: EnqueueMessage, i: number, now: number, maxId: bigint, nextId: () => string): NewMessage {
  // Field names (fieldOf) are made only for an error: this runs for every message.
  if (msg.id !== undefined && !isMessageId(msg.id)) throw badId(msg.id, fieldOf(i, "id"));
  if (msg.id !== undefined && maxId < MAX_MESSAGE_ID && msg.id.length >= String(maxId).length && BigInt(msg.id) > maxId) {
    throw new ValidationError(fieldOf(i, "id"), `must be at most ${maxId} (the largest the table's id column holds), got "${msg.id}"`);
  }
  const priority = msg.priority ?? PRIORITY.default;
  if (!Number.isInteger(priority) || priority < PRIORITY.min || priority > PRIORITY.max) {
    throw new ValidationError(fieldOf(i, "priority"), `must be an integer from ${PRIORITY.min} to ${PRIORITY.max}, got ${priority}`);
  }
  if (msg.delayMs !== undefined && msg.deliverAt !== undefined) {
    throw new ValidationError(`${fieldOf(i, "delayMs")} and ${fieldOf(i, "deliverAt")}`, "give one or the other, not both");
  }
  if (msg.delayMs !== undefined && !(Number.isFinite(msg.delayMs) && msg.delayMs >= 0)) {
    throw new ValidationError(fieldOf(i, "delayMs"), `must be a number >= 0, got ${msg.delayMs}`);
  }
  if (msg.deliverAt !== undefined && !(Number.isFinite(msg.deliverAt) && msg.deliverAt >= 0 && msg.deliverAt <= MAX_EPOCH_MS)) {
    throw new ValidationError(fieldOf(i, "deliverAt"), `must be epoch milliseconds from 0 to ${MAX_EPOCH_MS}, got ${msg.deliverAt}`);
  }
  const timeNext = msg.deliverAt ?? now + (msg.delayMs ?? 0);
  return { id: msg.id ?? nextId(), priority, timeNext, epoch: 0, payload: msg.payload };
}

/** The API's name of a message's field for a column the database named in a refusal. */
const FIELD_OF_COLUMN: Record<string, string> = { id: "id", priority: "priority", time_next: "deliverAt", message: "payload" };

/**
 * The enqueue request the database refused a row of, alone (the coalescer split it from the others): a
 * 400 that names the message, and its field when the database named the column.
 */
export function refusedMessage(err: RejectedWriteError, rows: readonly NewMessage[]): ValidationError {
  const i = err.id === undefined ? -1 : rows.findIndex((r) => r.id === err.id);
  const field = err.column === undefined ? undefined : FIELD_OF_COLUMN[err.column];
  const where = i < 0 ? "messages" : field ? fieldOf(i, field) : `messages[${i}]`;
  return new ValidationError(where, err.message);
}

/** At most `max` messages, ids or receipts (`field`) in one request. */
export function checkBatchSize(field: string, n: number, max: number): void {
  if (n > max) throw new PayloadTooLargeError(`${field}: at most ${max} per request, got ${n}`);
}

/**
 * The payload of message `i` (its JSON text as the producer wrote it, and what payload.ts's scan found of
 * it): the column would take it, and it is at most `maxBytes` of UTF-8. Returns the text.
 */
export function checkPayload(i: number, payload: { text: string; scanned: ScannedValue } | undefined, maxBytes: number): string {
  if (payload === undefined) throw ValidationError.required(fieldOf(i, "payload"));
  const problem = payloadProblem(payload.scanned, payload.text);
  if (problem !== undefined) throw new ValidationError(fieldOf(i, "payload"), problem);
  // A UTF-16 code unit is at most 3 bytes of UTF-8: most payloads are under the limit without counting.
  const text = payload.text;
  if (text.length * 3 > maxBytes && Buffer.byteLength(text) > maxBytes) {
    throw new PayloadTooLargeError(`${fieldOf(i, "payload")}: larger than ${maxBytes} bytes`);
  }
  return text;
}

/** The API's name of field `name` of message `i`. */
export function fieldOf(i: number, name: string): string {
  return `messages[${i}].${name}`;
}
