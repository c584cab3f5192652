import type { MessageRow } from "../model/messages.js";

interface InProgress {
  epoch: number;
  done: Promise<void>;
}

/**
 * Deliveries under way: from the pop of a batch until its delivery is recorded (the post-send postpone
 * committed, or found unneeded). A client's reschedule or extend of those ids waits for that record, which
 * would otherwise overwrite it; a fenced ack whose epoch is older than the delivery under way is stale.
 */
export class DeliveriesInProgress {
  private readonly byId = new Map<string, InProgress>();

  /** Registers a batch; call the returned function once its delivery is recorded. */
  begin(batch: readonly MessageRow[]): () => void {
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const entries = batch.map((row) => {
      const entry = { epoch: row.epoch, done };
      this.byId.set(row.id, entry);
      return [row.id, entry] as const;
    });
    return () => {
      for (const [id, entry] of entries) if (this.byId.get(id) === entry) this.byId.delete(id);
      finish();
    };
  }

  /** The epoch a delivery of `id` under way was sent with, if one is. */
  epochOf(id: string): number | undefined {
    return this.byId.get(id)?.epoch;
  }

  /** Resolves when the deliveries of `ids` under way now are recorded. */
  async settled(ids: Iterable<string>): Promise<void> {
    const pending = new Set<Promise<void>>();
    for (const id of ids) {
      const entry = this.byId.get(id);
      if (entry) pending.add(entry.done);
    }
    if (pending.size > 0) await Promise.all(pending);
  }
}
