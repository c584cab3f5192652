import { TablemqError, InvalidTableNameError } from "../errors.js";
import { isMessageId, MAX_MESSAGE_ID } from "../ids.js";
import { parseReceipt } from "../receipts.js";
import { deadLetterTableOf, MAX_DEAD_LETTER_BASE, MAX_DELAY_MS, TABLE_NAME } from "./limits.js";
import type { Delivery } from "./messages.js";

export class ValidationError extends TablemqError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super("validation_failed", `${field}: ${message}`);
  }

  /** "`field` is required", as the request schemas say it. */
  static required(field: string): ValidationError {
    return ValidationError.saying(field, `${field} is required`);
  }

  /** An error about `field` whose whole message is `message` (a schema's, which names the field itself). */
  static saying(field: string, message: string): ValidationError {
    const err = new ValidationError(field, message);
    err.message = message;
    return err;
  }
}

export function checkTableName(name: string): void {
  if (!TABLE_NAME.test(name)) throw new InvalidTableNameError(name);
}

/** The error for a value that is not a message id (isMessageId); callers test first, so `field` is made only then. */
export function badId(id: unknown, field: string): ValidationError {
  return new ValidationError(field, `must be a decimal string from 0 to ${MAX_MESSAGE_ID}, got ${JSON.stringify(id)}`);
}

export function checkIds(ids: readonly string[], field = "ids"): void {
  if (ids.length === 0) throw new ValidationError(field, "must not be empty");
  for (let i = 0; i < ids.length; i++) if (!isMessageId(ids[i]!)) throw badId(ids[i]!, `${field}[${i}]`);
}

/** Receipts as the deliveries they name; the error names the first bad one. */
export function checkReceipts(receipts: readonly string[], field = "receipts"): Delivery[] {
  if (receipts.length === 0) throw new ValidationError(field, "must not be empty");
  return receipts.map((receipt, i) => {
    const delivery = parseReceipt(receipt);
    if (!delivery || !isMessageId(delivery.id)) {
      throw new ValidationError(`${field}[${i}]`, `must be a receipt from a delivered message, got ${JSON.stringify(receipt)}`);
    }
    return delivery;
  });
}

/** maxAttempts > 0 needs a dead-letter table, whose name must fit. */
export function checkDeadLetterName(table: string, maxAttempts: number | undefined): void {
  if (maxAttempts !== undefined && maxAttempts > 0 && table.length > MAX_DEAD_LETTER_BASE) {
    throw new ValidationError(
      "maxAttempts",
      `table names longer than ${MAX_DEAD_LETTER_BASE} characters cannot have a dead-letter table (${deadLetterTableOf(table)}), so maxAttempts must be 0`,
    );
  }
}

/** A delay (ms) in 0..MAX_DELAY_MS, when given. */
export function checkDelay(field: string, ms: number | undefined): void {
  if (ms !== undefined && !(Number.isFinite(ms) && ms >= 0 && ms <= MAX_DELAY_MS)) {
    throw new ValidationError(field, `must be a number from 0 to ${MAX_DELAY_MS}, got ${ms}`);
  }
}

/**
 * What a request's schema cannot say: one of ids or receipts is given, every id fits 64 bits, every receipt
 * parses. HTTP bodies and socket frames alike (frames.ts); throws ValidationError naming the field. Returns
 * the receipts' deliveries (none when no receipts were given).
 */
export function checkIdsAndReceipts(req: { ids?: readonly string[]; receipts?: readonly string[] }): Delivery[] {
  if (req.ids === undefined && req.receipts === undefined) {
    throw new ValidationError("ids", "one of ids or receipts is required");
  }
  if (req.ids !== undefined) checkIds(req.ids);
  return req.receipts === undefined ? [] : checkReceipts(req.receipts);
}
