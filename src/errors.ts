/** Errors the core raises for conditions a caller can act on; the server maps `code` to API.md's codes. */
export class TablemqError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
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

export class InvalidTableNameError extends TablemqError {
  constructor(readonly table: string) {
    super("validation_failed", `table name ${JSON.stringify(table)} must match ^[a-z][a-z0-9_]{0,62}$`);
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

export class WebhookNotFoundError extends TablemqError {
  constructor(table: string, name: string) {
    super("webhook_not_found", `table ${JSON.stringify(table)} has no webhook ${JSON.stringify(name)}`);
  }
}
