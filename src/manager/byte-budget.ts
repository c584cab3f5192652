/**
 * A count of bytes that several tables share, with a ceiling. The engine keeps two:
 *  - the caches' (TABLEMQ_CACHE_MAX_BYTES): cacheSize bounds a cache by rows, which says nothing of memory when
 *    payloads are large (10,000 rows of 256 KiB are 2.5 GiB). A row is charged from when it enters a cache
 *    until it leaves (after its delivery was recorded, or on eviction). A table that cannot charge a row stays
 *    in pending mode and reads more as its cache drains. An empty cache takes one row whatever the budget
 *    says, so a payload larger than what is free still moves.
 *  - the enqueues' (TABLEMQ_ENQUEUE_MAX_BYTES): an enqueue's payloads are charged from when it is accepted
 *    until its INSERT settled; one that does not fit is refused with 429 (the Inserter), as RabbitMQ blocks
 *    publishers at its memory watermark. Alone, an enqueue is taken whatever it weighs.
 *
 * Bytes are counted by payloadBytes (payload.ts): the payload text's length in UTF-16 code units, which is
 * what V8 keeps of an ASCII JSON text.
 */
export class ByteBudget {
  private used = 0;

  constructor(readonly maxBytes: number) {}

  /** Bytes charged now, across all tables. */
  get usedBytes(): number {
    return this.used;
  }

  get freeBytes(): number {
    return Math.max(0, this.maxBytes - this.used);
  }

  /** Charges `bytes` if they fit, or always when `force` (an empty cache's first row). */
  take(bytes: number, force = false): boolean {
    if (!force && this.used + bytes > this.maxBytes) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used -= bytes;
  }
}

/** A budget that never refuses (a manager made without one, as in unit tests). */
export const UNBOUNDED = (): ByteBudget => new ByteBudget(Infinity);
