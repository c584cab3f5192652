import { TABLE_NAME_PATTERN } from "./model/limits.js";

/** Errors the core raises for conditions a caller can act on; the server maps `code` to the API's error codes. */
export class TablemqError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class TableNotFoundError extends TablemqError {
  constructor(readonly table: string) {
    super("table_not_found", `table ${JSON.stringify(table)} is not a message table`);
  }
}

/** The engine (or a table's manager) is not open: not yet opened, closing or closed. */
export class ClosedError extends TablemqError {
  constructor(what: string) {
    super("unavailable", `${what} is closed`);
  }
}

/** A request larger than a limit allows (too many messages or ids, a payload too large). */
export class PayloadTooLargeError extends TablemqError {
  constructor(message: string) {
    super("payload_too_large", message);
  }
}

export class InvalidTableNameError extends TablemqError {
  constructor(readonly table: string) {
    super("validation_failed", `table name ${JSON.stringify(table)} must match ${TABLE_NAME_PATTERN}`);
  }
}

export class ConflictError extends TablemqError {
  constructor(message: string) {
    super("conflict", message);
  }
}

/** Server-side buffers are full: retry later (429 with retry-after). Nothing was written. */
export class OverloadedError extends TablemqError {
  constructor(message: string) {
    super("overloaded", message);
  }
}

/**
 * The database could not be reached, or the statement could not be sent in time: it never ran, so
 * **nothing was written** (the API's 503 `unavailable`).
 */
export class UnavailableError extends TablemqError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("unavailable", message, options);
  }
}

/**
 * A statement was sent and then its connection was lost, or it did not answer in time: it may or may not
 * have committed. `ids` are the messages concerned, so the client can resend them (enqueue is idempotent
 * by id). The server answers 504 `outcome_unknown`, never the API's 503 "nothing was written".
 */
export class OutcomeUnknownError extends TablemqError {
  constructor(
    message: string,
    readonly ids: readonly string[] = [],
    options?: { cause?: unknown },
  ) {
    super("outcome_unknown", message, options);
  }
}

/** No unacked message of the table has this id (unknown, acked, or dead-lettered). */
export class MessageNotFoundError extends TablemqError {
  constructor(table: string, id: string) {
    super("message_not_found", `table ${JSON.stringify(table)} has no unacked message ${id}`);
  }
}

export class WebhookNotFoundError extends TablemqError {
  constructor(table: string, name: string) {
    super("webhook_not_found", `table ${JSON.stringify(table)} has no webhook ${JSON.stringify(name)}`);
  }
}

/**
 * The database refused a write for what it holds (a value out of its column's range, a CHECK that failed),
 * not for the connection: nothing of the statement was written, and sending the same rows again would fail
 * again. `id` is the message whose row it refused, when the database said which. A coalesced write that
 * fails so is split until the request that holds the row is alone (coalescer.ts): only that one fails.
 */
export class RejectedWriteError extends TablemqError {
  constructor(
    message: string,
    readonly id?: string,
    options?: { cause?: unknown; column?: string },
  ) {
    super("validation_failed", message, options);
    this.column = options?.column;
  }

  /** The column the database named, when it named one (`message` for the payload's CHECK). */
  readonly column: string | undefined;
}
