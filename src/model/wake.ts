/**
 * What a wake says about rows written or changed outside the server (the application's transaction,
 * `tablemq/sql`): one shape for the HTTP body (`POST /v1/tables/{table}/wake`), the bus event and the client.
 * Every part is a hint: a server that never hears it finds the same rows at its next poll.
 */
import { isMessageId } from "../ids.js";
import { MAX_EPOCH_MS } from "./limits.js";

/** Most due times, and most ids, one wake carries. */
export const MAX_WAKE_ITEMS = 1000;

export interface WakeNote {
  /** Epoch ms at which rows written fall due (delayed messages): the server looks again then. */
  dueAt?: number[];
  /** Ids acked or postponed outside the server: copies it holds are dropped, not sent. */
  forget?: string[];
}

/** The note in `raw` (an object with optional `dueAt` and `forget`), or undefined when it is not one. */
export function wakeNoteOf(raw: Record<string, unknown>): WakeNote | undefined {
  const { dueAt, forget } = raw;
  const note: WakeNote = {};
  if (dueAt !== undefined) {
    if (!Array.isArray(dueAt) || dueAt.length > MAX_WAKE_ITEMS || !dueAt.every(isDueTime)) return undefined;
    if (dueAt.length > 0) note.dueAt = dueAt;
  }
  if (forget !== undefined) {
    if (!Array.isArray(forget) || forget.length > MAX_WAKE_ITEMS || !forget.every(isMessageId)) return undefined;
    if (forget.length > 0) note.forget = forget;
  }
  return note;
}

/** Both notes in one, within MAX_WAKE_ITEMS each: the earliest due times and the first ids are kept. */
export function mergeWakeNotes(a: WakeNote, b: WakeNote): WakeNote {
  const dueAt = [...new Set([...(a.dueAt ?? []), ...(b.dueAt ?? [])])].sort((x, y) => x - y).slice(0, MAX_WAKE_ITEMS);
  const forget = [...new Set([...(a.forget ?? []), ...(b.forget ?? [])])].slice(0, MAX_WAKE_ITEMS);
  return { ...(dueAt.length > 0 ? { dueAt } : {}), ...(forget.length > 0 ? { forget } : {}) };
}

function isDueTime(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 && value <= MAX_EPOCH_MS;
}
