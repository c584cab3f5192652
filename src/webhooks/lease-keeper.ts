import type { Clock, TimerHandle } from "../clock.js";
import type { Logger } from "../logger.js";
import type { Delivery } from "../model/messages.js";
import type { TableAccess } from "./types.js";

export interface LeaseKeeperDeps {
  clock: Clock;
  log: Logger;
  table: Pick<TableAccess, "extend" | "ackWaitMs">;
  /** The deliveries held now. */
  held: () => Delivery[];
  /** Held deliveries that are no longer current (acked elsewhere, or delivered again). */
  onStale: (stale: Delivery[]) => void;
  /** For log lines. */
  labels: { table: string; webhook: string };
}

/**
 * Keeps a receiver's held messages leased in their table: every half ack wait, while anything is held, it
 * extends them to an ack wait from now (fenced by the epoch they were delivered with). So other receivers
 * do not get them while a destination is down, and a crash hands them back within an ack wait.
 */
export class LeaseKeeper {
  private timer: TimerHandle | undefined;
  private stopped = false;

  constructor(private readonly deps: LeaseKeeperDeps) {}

  /** Schedules the next extension unless one is scheduled. */
  arm(): void {
    if (this.timer !== undefined || this.stopped) return;
    this.timer = this.deps.clock.setTimeout(
      () => {
        this.timer = undefined;
        void this.extend();
      },
      Math.max(10, this.deps.table.ackWaitMs() / 2),
    );
  }

  /** Nothing is held: no extension until the next arm(). */
  disarm(): void {
    if (this.timer !== undefined) this.deps.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** For good. */
  stop(): void {
    this.stopped = true;
    this.disarm();
  }

  private async extend(): Promise<void> {
    const { table, log, labels } = this.deps;
    const held = this.deps.held();
    if (held.length === 0 || this.stopped) return;
    try {
      const { stale } = await table.extend(held, table.ackWaitMs());
      if (stale.length > 0 && !this.stopped) this.deps.onStale(stale);
    } catch (err) {
      log.debug({ err, ...labels }, "could not extend the leases of held webhook messages");
    }
    if (this.deps.held().length > 0) this.arm();
  }
}
