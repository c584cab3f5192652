/**
 * Times at which rows this server knows of fall due (delayed enqueues it wrote), so the poller can look at
 * that moment instead of at its next periodic poll. Only the time is kept, not the row: the poll reads the
 * row when it is due. Bounded: past `capacity` distinct times a new one is not kept, and the periodic poll
 * finds its row as before.
 */
export class DueTimes {
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

  /** Keeps `at` (rounded up to a whole ms); returns false when it was full. */
  add(at: number): boolean {
    const ms = Math.ceil(at);
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
