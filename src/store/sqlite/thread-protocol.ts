/**
 * What the embedded store's two threads say to each other (thread-store.ts, the server's side; thread.ts,
 * the worker's): a call of one SqliteStore method by name, and its answer, a value or an error. Values cross
 * by structured clone (bigints included); errors as the few kinds the layers above tell apart.
 */
import { ConflictError, TableNotFoundError } from "../../errors.js";
import { ValidationError } from "../../model/validate.js";

export interface Call {
  id: number;
  method: string;
  args: unknown[];
}

export type Answer = { id: number; value: unknown } | { id: number; error: CrossedError };

export type CrossedError =
  | { kind: "table_not_found"; table: string }
  | { kind: "validation"; field: string; message: string }
  | { kind: "conflict"; message: string }
  | { kind: "error"; message: string; code?: string };

export function crossError(err: unknown): CrossedError {
  if (err instanceof TableNotFoundError) return { kind: "table_not_found", table: err.table };
  if (err instanceof ValidationError) return { kind: "validation", field: err.field, message: err.message.slice(err.field.length + 2) };
  if (err instanceof ConflictError) return { kind: "conflict", message: err.message };
  const code = (err as { code?: unknown }).code;
  return { kind: "error", message: String((err as Error)?.message ?? err), ...(typeof code === "string" ? { code } : {}) };
}

export function uncrossError(e: CrossedError): Error {
  switch (e.kind) {
    case "table_not_found":
      return new TableNotFoundError(e.table);
    case "validation":
      return new ValidationError(e.field, e.message);
    case "conflict":
      return new ConflictError(e.message);
    case "error":
      return Object.assign(new Error(e.message), e.code === undefined ? {} : { code: e.code });
  }
}

/** The worker's first message: the store is open (its file locked), or why not. */
export type Ready = { ready: true; path: string } | { ready: false; error: CrossedError };
