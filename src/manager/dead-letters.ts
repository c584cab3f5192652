import { RejectedWriteError } from "../errors.js";
import type { RedriveResult } from "../store/types.js";
import type { MessageRow } from "../model/messages.js";
import type { TableEnv, TableState } from "./table-state.js";

/** Dead letters moved back per statement when redriving all of them. */
export const REDRIVE_CHUNK = 1000;

export interface DeadLettersDeps {
  env: TableEnv;
  /** Its options (maxAttempts, ack wait), counters, and the holdings that end when a row moves out. */
  state: TableState;
  /** The rows' delivery is over (moved, or left for later): drop them from the cache's sending set. */
  discard: (ids: readonly string[]) => Promise<void>;
  /** Rows came back into the table: look for them. */
  poll: () => void;
}

/**
 * maxAttempts (our addition: Vitess redelivers forever). A row popped for a delivery it has no attempts
 * left for goes to the table's dead-letter table instead of a receiver; redrive brings dead letters back.
 */
export class DeadLetters {
  constructor(private readonly deps: DeadLettersDeps) {}

  /** Splits a popped batch: rows with attempts left (returned, to send) and rows out of them (buried). */
  sort(rows: MessageRow[]): { send: MessageRow[]; bury?: Promise<void> } {
    const max = this.deps.state.options.maxAttempts;
    if (max <= 0 || rows.every((r) => r.epoch < max)) return { send: rows };
    const bury = this.bury(
      rows.filter((r) => r.epoch >= max),
      max,
    );
    return { send: rows.filter((r) => r.epoch < max), bury };
  }

  /**
   * Moves dead letters back into the table, due now with epoch 0: the given ids, or all of them (in
   * statements of REDRIVE_CHUNK). Conflicts (the id is in use again) stay dead.
   */
  async redrive(ids?: readonly string[]): Promise<RedriveResult> {
    const { store, table, clock } = this.deps.env;
    const total: RedriveResult = { redriven: [], missing: [], conflicts: [] };
    for (;;) {
      const r = await store.redrive(table, ids === undefined ? undefined : [...ids], clock.now(), REDRIVE_CHUNK);
      total.redriven.push(...r.redriven);
      total.missing.push(...r.missing);
      total.conflicts.push(...r.conflicts);
      if (ids !== undefined || r.redriven.length < REDRIVE_CHUNK) break;
    }
    if (total.redriven.length > 0) this.deps.poll();
    return total;
  }

  private async bury(rows: readonly MessageRow[], maxAttempts: number): Promise<void> {
    const ids = rows.map((r) => r.id);
    await this.move(ids, maxAttempts);
    await this.deps.discard(ids);
  }

  /**
   * Moves ids to the dead-letter table. When the database refuses a row of them (RejectedWriteError), the
   * ids are split in halves until the one it refuses fails alone, so one row cannot hold the others back.
   */
  private async move(ids: readonly string[], maxAttempts: number): Promise<void> {
    const { store, table, clock, log } = this.deps.env;
    const { state } = this.deps;
    try {
      const reason = `delivered ${maxAttempts} time${maxAttempts === 1 ? "" : "s"} without an ack (maxAttempts ${maxAttempts})`;
      const moved = await store.deadLetter(table, [...ids], maxAttempts, reason, clock.now());
      state.count("deadLettered", moved.length);
      state.holdings.release(moved); // out of the table: their maxInFlight credit ends
    } catch (err) {
      if (err instanceof RejectedWriteError && ids.length > 1) {
        const half = ids.length >> 1;
        await this.move(ids.slice(0, half), maxAttempts);
        await this.move(ids.slice(half), maxAttempts);
        return;
      }
      state.count("deadLetterFailed", ids.length);
      log.warn({ err, table, count: ids.length }, "could not dead-letter messages; retrying after the ack wait");
      // Left due in the table: try again after an ack wait, not at every poll.
      await store.reschedule(table, [...ids], clock.now(), state.options.ackWaitMs).catch(() => {});
    }
  }
}
