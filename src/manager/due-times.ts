/**
 * Times at which rows fall due (delays, redeliveries after the ack wait and backoff, postpones, extended
 * leases), so the poller can look at that moment instead of at its next periodic poll. Only the time is
 * kept, not the row: the poll reads the rows that are due. Times are kept in slots of SLOT_MS, rounded up,
 * so wake-ups are at least that far apart and a burst of deliveries takes a few entries. Bounded: past
 * `capacity` slots a new one is not kept (`add` says so; the Poller reads such times back from the table).
 */
export const SLOT_MS = 10;

export class DueTimes {
  /** The slot a time falls in: the next multiple of SLOT_MS at or after it. */
  static slotOf(at: number): number {
    return Math.ceil(at / SLOT_MS) * SLOT_MS;
  }

  private readonly heap: number[] = [];
  private readonly known = new Set<number>();

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.heap.length;
  }

  /** The earliest time kept, or undefined. */
  get next(): number | undefined {
    return this.heap[0];
  }

  /** Keeps `at`'s slot; returns false when it was full. */
  add(at: number): boolean {
    const ms = DueTimes.slotOf(at);
    if (this.known.has(ms)) return true;
    if (this.heap.length >= this.capacity) return false;
    this.known.add(ms);
    const h = this.heap;
    h.push(ms);
    for (let i = h.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (h[parent]! <= h[i]!) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
    return true;
  }

  /** Forgets the times up to `now` (their rows are due: a poll at or after them reads them). */
  dropUntil(now: number): void {
    const h = this.heap;
    while (h.length > 0 && h[0]! <= now) {
      this.known.delete(h[0]!);
      const last = h.pop()!;
      if (h.length === 0) break;
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l]! < h[m]!) m = l;
        if (r < h.length && h[r]! < h[m]!) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
  }

  clear(): void {
    this.heap.length = 0;
    this.known.clear();
  }
}
