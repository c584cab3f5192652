/**
 * The rules every layer checks against, in one place: names, priorities, times. The HTTP schemas, the
 * engine's validation, the store's guards, the CLI and the client import them from here.
 */

/** A table name: what the HTTP routes, the engine and the store accept. */
export const TABLE_NAME_PATTERN = "^[a-z][a-z0-9_]{0,62}$";
export const TABLE_NAME = new RegExp(TABLE_NAME_PATTERN);

/** Priorities: lower is delivered first. */
export const PRIORITY = { min: 0, max: 255, default: 50 } as const;

/** Longest delay (and ack wait, backoff, lease extension) accepted: about 100 years in ms. */
export const MAX_DELAY_MS = 3_155_760_000_000;

/** The latest due time accepted (`deliverAt`), epoch ms: its nanoseconds fit a signed BIGINT with room for backoff (year 2255). */
export const MAX_EPOCH_MS = 9_000_000_000_000;

/** Most messages (or ids, receipts) in one request, by default (TABLEMQ_MAX_BATCH; `tablemq/sql`'s limits). */
export const DEFAULT_MAX_BATCH = 1000;

/** Largest payload, UTF-8 bytes of its JSON text, by default (TABLEMQ_MAX_PAYLOAD_BYTES; `tablemq/sql`'s limits). */
export const DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024;

/** A table's dead letters live in `<table>_dlq`. */
export const DEAD_LETTER_SUFFIX = "_dlq";

/** A dead letter's reason is kept to this many characters (its column's size). */
export const MAX_REASON_CHARS = 1024;

/** The longest table name that can have a dead-letter table (a name is at most 63 characters). */
export const MAX_DEAD_LETTER_BASE = 63 - DEAD_LETTER_SUFFIX.length;

/** The dead-letter table of `table`. */
export function deadLetterTableOf(table: string): string {
  return table + DEAD_LETTER_SUFFIX;
}

/** `orders` for `orders_dlq`; undefined for a name that is not a dead-letter table's. */
export function deadLetterBaseOf(name: string): string | undefined {
  return name.endsWith(DEAD_LETTER_SUFFIX) && name.length > DEAD_LETTER_SUFFIX.length
    ? name.slice(0, -DEAD_LETTER_SUFFIX.length)
    : undefined;
}
