/**
 * Telling a refused write (the data) from a failed one (the connection): see RejectedWriteError.
 */
import { RejectedWriteError } from "../../errors.js";

/**
 * Server errors about the values of a row, beyond SQLSTATE classes 22 (data exception) and 23 (integrity
 * constraint; a duplicate key is handled where it can happen): these report their SQLSTATE as HY000.
 * 1366 incorrect string value, 3819 MySQL's CHECK constraint violated.
 */
const ROW_ERRNOS = new Set([1366, 3819]);
const ER_DUP_ENTRY = 1062;

interface ServerError {
  errno?: number;
  sqlState?: string;
  sqlMessage?: string;
  message?: string;
  fatal?: boolean;
}

/** True when the server refused the statement for the values it holds. */
export function isRowRefusal(err: unknown): boolean {
  const e = err as ServerError | null;
  if (!e || typeof e !== "object" || e.fatal === true || typeof e.errno !== "number") return false;
  if (e.errno === ER_DUP_ENTRY) return false;
  return e.sqlState?.startsWith("22") === true || e.sqlState?.startsWith("23") === true || ROW_ERRNOS.has(e.errno);
}

/**
 * `err` as a RejectedWriteError when it is a row refusal, naming the row's id when the server gave its
 * number ("... at row 3", counted in `rows`, the statement's rows in order); otherwise `err` itself.
 */
export function asRejection(err: unknown, rows?: ReadonlyArray<{ id: string }>): unknown {
  if (!isRowRefusal(err)) return err;
  const text = (err as ServerError).sqlMessage ?? (err as ServerError).message ?? "refused";
  const at = /\s*\bat row (\d+)\b/.exec(text);
  const id = at && rows ? rows[Number(at[1]) - 1]?.id : undefined;
  // "... for column 'id' ..." (a value), or "CONSTRAINT `t.message` failed ..." (MariaDB's CHECK of a column).
  const column = /column '(\w+)'/.exec(text)?.[1] ?? /CONSTRAINT `(?:[^`]*\.)?(\w+)` failed/.exec(text)?.[1];
  const said = at ? text.replace(at[0], "") : text; // the row number counts in a shared statement, not the request
  return new RejectedWriteError(`the database refused it: ${said}`, id, { cause: err, column });
}

/** Runs a write, turning a row refusal into a RejectedWriteError (see asRejection). */
export async function refusing<T>(work: Promise<T>, rows?: ReadonlyArray<{ id: string }>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    throw asRejection(err, rows);
  }
}
