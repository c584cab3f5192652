import type { MessageRow } from "../model/messages.js";
import { payloadBytes } from "../payload.js";
import { type ByteBudget, UNBOUNDED } from "./byte-budget.js";

/**
 * The send queue of one message table: a bounded binary heap ordered by (priority, timeNext), plus the
 * set of ids sending (popped, being sent and postponed). Vitess's cache.go, with one addition: `evict`
 * forgets a queued id (an ack or reschedule must not be followed by a send of a stale cached copy).
 *
 * Capacity counts queued and sending ids together, as in Vitess: a full cache refuses adds, which puts
 * the manager in "pending" mode. So does a row whose payload the shared ByteBudget cannot take. Removal
 * from the heap is lazy (an entry is live only while `queued` maps its id to it), and the heap is compacted
 * when stale entries outnumber live ones.
 */
interface Entry {
  row: MessageRow;
  seq: number;
}

export type AddResult = "added" | "present" | "full";

export class PriorityCache {
  private heap: Entry[] = [];
  private readonly queued = new Map<string, Entry>();
  /** In-flight ids and the bytes each is charged to the budget. */
  private readonly sending = new Map<string, number>();
  private seq = 0;

  constructor(
    private capacity: number,
    /** Shared by all tables' caches: a row is charged while it is queued or sending. */
    private readonly budget: ByteBudget = UNBOUNDED(),
  ) {}

  /** Queued plus sending. */
  get size(): number {
    return this.queued.size + this.sending.size;
  }

  get queuedCount(): number {
    return this.queued.size;
  }

  get sendingCount(): number {
    return this.sending.size;
  }

  /** True when nothing is waiting to be sent (sending ids do not count). */
  isEmpty(): boolean {
    return this.queued.size === 0;
  }

  isFull(): boolean {
    return this.size >= this.capacity;
  }

  has(id: string): boolean {
    return this.queued.has(id) || this.sending.has(id);
  }

  resize(capacity: number): void {
    this.capacity = capacity;
  }

  /**
   * Queues a row: "added"; "present" (a no-op) if the id is already queued or sending; "full" when the
   * cache has no room.
   */
  add(row: MessageRow): AddResult {
    if (this.has(row.id)) return "present";
    if (this.isFull()) return "full";
    if (!this.budget.take(payloadBytes(row.payload), this.size === 0)) return "full";
    const entry: Entry = { row, seq: this.seq++ };
    this.queued.set(row.id, entry);
    this.push(entry);
    return "added";
  }

  /** Takes the first row by (priority, timeNext) and moves it to sending. */
  pop(): MessageRow | undefined {
    while (this.heap.length > 0) {
      const entry = this.popHeap();
      if (this.queued.get(entry.row.id) !== entry) continue; // evicted or discarded: stale entry
      this.queued.delete(entry.row.id);
      this.sending.set(entry.row.id, payloadBytes(entry.row.payload));
      return entry.row;
    }
    return undefined;
  }

  /**
   * Pops up to `max` rows in order. Rows `accept` turns down stay queued, in their place, for another
   * receiver.
   */
  popBatch(max: number, accept?: (row: MessageRow) => boolean): MessageRow[] {
    const batch: MessageRow[] = [];
    const declined: Entry[] = [];
    while (batch.length < max && this.heap.length > 0) {
      const entry = this.popHeap();
      if (this.queued.get(entry.row.id) !== entry) continue; // stale
      if (accept && !accept(entry.row)) {
        declined.push(entry);
        continue;
      }
      this.queued.delete(entry.row.id);
      this.sending.set(entry.row.id, payloadBytes(entry.row.payload));
      batch.push(entry.row);
    }
    for (const entry of declined) this.push(entry);
    return batch;
  }

  /** Forgets ids entirely, queued or sending (after their batch was postponed). */
  discard(ids: Iterable<string>): void {
    for (const id of ids) {
      this.dequeue(id);
      const bytes = this.sending.get(id);
      if (bytes !== undefined) {
        this.sending.delete(id);
        this.budget.give(bytes);
      }
    }
    this.compactIfSparse();
  }

  /** Drops a queued id and gives its bytes back; false when it was not queued. */
  private dequeue(id: string): boolean {
    const entry = this.queued.get(id);
    if (!entry) return false;
    this.queued.delete(id);
    this.budget.give(payloadBytes(entry.row.payload));
    return true;
  }

  /**
   * Drops queued copies of ids so they are not sent. In-flight ids stay until their batch's discard, so a
   * poll cannot re-add them meanwhile. Returns how many queued ids were dropped.
   */
  evict(ids: Iterable<string>): number {
    let n = 0;
    for (const id of ids) if (this.dequeue(id)) n++;
    this.compactIfSparse();
    return n;
  }

  queuedRows(): MessageRow[] {
    return [...this.queued.values()].map((e) => e.row);
  }

  clear(): void {
    for (const entry of this.queued.values()) this.budget.give(payloadBytes(entry.row.payload));
    for (const bytes of this.sending.values()) this.budget.give(bytes);
    this.heap = [];
    this.queued.clear();
    this.sending.clear();
  }

  private compactIfSparse(): void {
    if (this.heap.length <= 64 || this.heap.length <= 2 * this.queued.size) return;
    this.heap = [...this.queued.values()];
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  private less(a: Entry, b: Entry): boolean {
    if (a.row.priority !== b.row.priority) return a.row.priority < b.row.priority;
    if (a.row.timeNext !== b.row.timeNext) return a.row.timeNext < b.row.timeNext;
    return a.seq < b.seq;
  }

  private push(entry: Entry): void {
    const h = this.heap;
    h.push(entry);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  private popHeap(): Entry {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private siftDown(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}
