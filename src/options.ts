/**
 * Message-table options and their Vitess COMMENT encoding.
 *
 * In memory options are milliseconds (the API's unit); in the table COMMENT they are seconds, exactly as
 * Vitess writes them (`vitess_message,vt_ack_wait=30,...`), so tables stay interchangeable with Vitess.
 * Fractional seconds are accepted and written (Vitess parses them as floats too).
 */
import type { Static } from "typebox";
import type { TableOptionsAnswer } from "./wire.js";

/** Options in milliseconds, as the API reports them (their schema: wire.ts). */
export type TableOptions = Static<typeof TableOptionsAnswer>;
type NumericOption = Exclude<keyof TableOptions, "paused">;

export const DEFAULT_OPTIONS: Readonly<TableOptions> = Object.freeze({
  ackWaitMs: 30_000,
  minBackoffMs: 30_000,
  maxBackoffMs: 0,
  purgeAfterMs: 86_400_000,
  batchSize: 10,
  cacheSize: 10_000,
  pollIntervalMs: 30_000,
  maxAttempts: 0,
  paused: false,
});

/** The comment key of `paused`, written only while the table is paused (a Vitess table's comment stays pure). */
const PAUSED_KEY = "vt_paused";

/** Comment keys, in the order Vitess documents them. */
const KEYS: ReadonlyArray<[NumericOption, string, "seconds" | "count"]> = [
  ["ackWaitMs", "vt_ack_wait", "seconds"],
  ["purgeAfterMs", "vt_purge_after", "seconds"],
  ["batchSize", "vt_batch_size", "count"],
  ["cacheSize", "vt_cache_size", "count"],
  ["pollIntervalMs", "vt_poller_interval", "seconds"],
  ["minBackoffMs", "vt_min_backoff", "seconds"],
  ["maxBackoffMs", "vt_max_backoff", "seconds"],
  ["maxAttempts", "vt_max_attempts", "count"],
];

export class OptionsError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = "OptionsError";
  }
}

/** Fills defaults and checks ranges; the error names the offending field. */
export function resolveOptions(partial: Partial<TableOptions> = {}): TableOptions {
  const ackWaitMs = partial.ackWaitMs ?? DEFAULT_OPTIONS.ackWaitMs;
  const opts: TableOptions = {
    ...DEFAULT_OPTIONS,
    ...stripUndefined(partial),
    ackWaitMs,
    minBackoffMs: partial.minBackoffMs ?? ackWaitMs,
  };
  if (typeof opts.paused !== "boolean") throw new OptionsError("paused", `paused must be true or false, got ${String(opts.paused)}`);
  const positive: Array<keyof TableOptions> = ["ackWaitMs", "batchSize", "cacheSize", "pollIntervalMs"];
  for (const [key] of KEYS) {
    const v = opts[key];
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
      throw new OptionsError(key, `${key} must be a finite number >= 0, got ${String(v)}`);
    }
    if (positive.includes(key) && v <= 0) throw new OptionsError(key, `${key} must be > 0, got ${v}`);
  }
  for (const key of ["batchSize", "cacheSize", "maxAttempts"] as const) {
    if (!Number.isInteger(opts[key])) throw new OptionsError(key, `${key} must be an integer, got ${opts[key]}`);
  }
  if (opts.maxBackoffMs !== 0 && opts.maxBackoffMs < opts.minBackoffMs) {
    throw new OptionsError("maxBackoffMs", `maxBackoffMs (${opts.maxBackoffMs}) must be 0 or >= minBackoffMs (${opts.minBackoffMs})`);
  }
  if (opts.batchSize > opts.cacheSize) {
    throw new OptionsError("batchSize", `batchSize (${opts.batchSize}) must not exceed cacheSize (${opts.cacheSize})`);
  }
  return opts;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Renders options as a Vitess message-table COMMENT. */
export function formatComment(opts: TableOptions): string {
  const parts = ["vitess_message"];
  for (const [key, name, unit] of KEYS) {
    if (key === "maxAttempts" && opts.maxAttempts === 0) continue; // keep pure-Vitess comments pure
    const v = unit === "seconds" ? opts[key] / 1000 : opts[key];
    parts.push(`${name}=${formatNumber(v)}`);
  }
  if (opts.paused) parts.push(`${PAUSED_KEY}=1`);
  return parts.join(",");
}

function formatNumber(v: number): string {
  return Number.isInteger(v) ? String(v) : String(Number(v.toFixed(6)));
}

/** True when a table COMMENT marks a Vitess message table (whitespace tolerated). */
export function isMessageComment(comment: string | null | undefined): boolean {
  return typeof comment === "string" && comment.split(",")[0]?.trim() === "vitess_message";
}

/**
 * Parses a Vitess message-table COMMENT into options. Unknown keys are ignored (Vitess does the same);
 * missing keys take the defaults; a malformed value is an OptionsError naming the key.
 */
export function parseComment(comment: string): TableOptions {
  const known = parsedComments.get(comment);
  if (known) return known;
  const options = Object.freeze(parseCommentAnew(comment));
  if (parsedComments.size >= PARSED_COMMENTS_KEPT) parsedComments.clear();
  parsedComments.set(comment, options);
  return options;
}

/**
 * Comments parsed lately, and their options (frozen, shared): a schema refresh reads every table's comment,
 * most of them alike, every 10 s (10,000 tables: 10,000 parses per refresh without it).
 */
const parsedComments = new Map<string, TableOptions>();
const PARSED_COMMENTS_KEPT = 1_000;

function parseCommentAnew(comment: string): TableOptions {
  if (!isMessageComment(comment)) throw new OptionsError("comment", `not a vitess_message comment: ${comment}`);
  const byName = new Map(KEYS.map(([key, name, unit]) => [name, { key, unit }]));
  const partial: Partial<TableOptions> = {};
  for (const raw of comment.split(",").slice(1)) {
    const item = raw.trim();
    if (item === "") continue;
    const eq = item.indexOf("=");
    if (eq < 0) continue;
    const name = item.slice(0, eq).trim();
    if (name === PAUSED_KEY) {
      partial.paused = item.slice(eq + 1).trim() !== "0";
      continue;
    }
    const spec = byName.get(name);
    if (!spec) continue;
    const text = item.slice(eq + 1).trim();
    const n = Number(text);
    if (text === "" || !Number.isFinite(n)) throw new OptionsError(name, `${name} is not a number: ${text}`);
    partial[spec.key] = spec.unit === "seconds" ? Math.round(n * 1000 * 1000) / 1000 : n;
  }
  return resolveOptions(partial);
}
